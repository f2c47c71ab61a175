"""The contract's records as typed dataclasses (names mirror `wit/types.wit` and `provider.wit`,
kebab-case become snake_case), and the two generic conversions to and from wasmtime-py values.

Money stays text: a `decimal` field is a `str` here (`-1234.50`); use `decimal.Decimal` on it,
never `float`.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Optional, Union

from wasmtime.component import Record, Variant

# ---- types.wit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Maintenance:
    kind: str
    starts_at: Optional[str] = None
    ends_at: Optional[str] = None


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    country: Optional[str]
    bic: Optional[str]
    status: str  # stable | beta | experimental | unknown (the aggregator did not say)
    deprecated: bool
    time_zone: str
    maintenance: Optional[Maintenance]
    provider_name: str


@dataclass(frozen=True)
class InstitutionFilter:
    country: Optional[str] = None
    name_contains: Optional[str] = None


@dataclass(frozen=True)
class Balance:
    amount: str
    reference_date: str


@dataclass(frozen=True)
class Account:
    id: str
    institution_id: str
    reference: str
    reference_type: str
    description: str
    product: Optional[str]
    holder_name: Optional[str]
    currency: str
    current_balance: Optional[Balance]
    available_balance: Optional[Balance]
    authorized_at: Optional[str]
    consent_expires_at: Optional[str]
    consent_days_left: Optional[int]
    availability: str  # available | readonly | unavailable
    deprecated: bool
    synchronized_at: Optional[str]


@dataclass(frozen=True)
class StatementLine:
    transaction_id: str
    statement_key: str
    booking_date: str
    value_date: Optional[str]
    amount: str
    currency: str
    payment_reference: str
    structured_reference: bool
    description: Optional[str]
    partner_name: Optional[str]
    partner_account: Optional[str]
    end_to_end_id: Optional[str]
    bank_transaction_code: Optional[str]
    mandate_id: Optional[str]
    creditor_id: Optional[str]
    card_reference: Optional[str]
    raw_json: str


@dataclass(frozen=True)
class Statement:
    key: str
    name: str
    date_from: str
    date_to: str
    balance_start: str
    balance_end: str


@dataclass(frozen=True)
class PendingLine:
    transaction_id: str
    date: str
    amount: str
    currency: str
    payment_reference: str
    partner_name: Optional[str]
    raw_json: str


@dataclass(frozen=True)
class Warning:
    kind: str
    message: str


@dataclass(frozen=True)
class ArgumentError:
    name: str
    reason: str


@dataclass(frozen=True)
class NoAccountsError:
    institution: str
    authorized_institutions: list[str]


@dataclass(frozen=True)
class ConsentError:
    account_id: str
    expired_at: Optional[str]
    reauthorization_url: Optional[str]
    advice: str


@dataclass(frozen=True)
class RateLimit:
    retry_after_seconds: Optional[int]
    message: str


@dataclass(frozen=True)
class UpstreamError:
    status: int
    code: Optional[str]
    detail: str
    request_id: Optional[str]
    advice: Optional[str]


@dataclass(frozen=True)
class MalformedError:
    what: str
    field: Optional[str]
    resource_id: Optional[str]
    reason: str


# The payload type of each `provider-error` case.
PROVIDER_ERROR_PAYLOADS: dict[str, type] = {
    "invalid-argument": ArgumentError,
    "invalid-client": str,
    "reconnect-required": str,
    "state-mismatch": str,
    "no-accounts-for-institution": NoAccountsError,
    "authorization-expired": ConsentError,
    "not-found": str,
    "rate-limited": RateLimit,
    "upstream": UpstreamError,
    "malformed-response": MalformedError,
    "transport": str,
    "storage": str,
}


class ProviderError(Exception):
    """The provider answered with a `provider-error`: `kind` is the WIT case, `detail` its
    payload (a `str` or one of the records above)."""

    def __init__(self, kind: str, detail: object):
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {_describe(detail)}")


def _describe(detail: object) -> str:
    if isinstance(detail, str):
        return detail
    if dataclasses.is_dataclass(detail):
        for name in ("advice", "message", "reason", "detail"):
            text = getattr(detail, name, None)
            if text:
                return str(text)
    return repr(detail)


# ---- provider.wit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderInfo:
    id: str
    name: str
    version: str
    api_version: str
    config_keys: list[str]


@dataclass(frozen=True)
class ConnectStart:
    authorization_url: str
    state: str


@dataclass(frozen=True)
class Connection:
    organization_id: str
    organization_name: Optional[str]
    institution: Institution
    accounts: list[Account]
    authorized_account_count: int


@dataclass(frozen=True)
class SyncRequest:
    account_id: str
    cursor: Optional[str] = None
    state: Optional[str] = None
    customer_ip: Optional[str] = None
    since: Optional[str] = None
    max_lines: int = 1000


@dataclass(frozen=True)
class SyncProgress:
    """`more(cursor)` or `done(state)`."""

    done: bool
    value: str


@dataclass(frozen=True)
class SyncBatch:
    account: Optional[Account]
    lines: list[StatementLine]
    updated_lines: list[StatementLine]
    statements: list[Statement]
    pending: Optional[list[PendingLine]]
    warnings: list[Warning]
    transactions_read: int
    progress: SyncProgress


# ---- conversions -----------------------------------------------------------------------------


def _kebab(name: str) -> str:
    return name.replace("_", "-")


_HINTS: dict[type, dict[str, object]] = {}


def _hints(cls: type) -> dict[str, object]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def from_wit(ty: object, value: object) -> object:
    """A wasmtime-py value (Record, list, None, str ...) as the typed object `ty`."""
    if value is None:
        return None
    origin = typing.get_origin(ty)
    if origin is Union:  # Optional[X]
        inner = [a for a in typing.get_args(ty) if a is not type(None)][0]
        return from_wit(inner, value)
    if origin is list:
        (inner,) = typing.get_args(ty)
        return [from_wit(inner, v) for v in value]  # type: ignore[union-attr]
    if ty is SyncProgress:
        assert isinstance(value, Variant)
        return SyncProgress(done=value.tag == "done", value=value.payload)
    if isinstance(ty, type) and dataclasses.is_dataclass(ty):
        hints = _hints(ty)
        return ty(
            **{
                f.name: from_wit(hints[f.name], getattr(value, _kebab(f.name)))
                for f in dataclasses.fields(ty)
            }
        )
    return value


def to_wit(value: object) -> object:
    """A typed dataclass as the wasmtime-py Record the contract expects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        record = Record()
        for f in dataclasses.fields(value):
            setattr(record, _kebab(f.name), to_wit(getattr(value, f.name)))
        return record
    if isinstance(value, list):
        return [to_wit(v) for v in value]
    return value


def provider_error(variant: Variant) -> ProviderError:
    payload_ty = PROVIDER_ERROR_PAYLOADS.get(variant.tag, str)
    return ProviderError(variant.tag, from_wit(payload_ty, variant.payload))


