"""An Odoo-shaped adapter: the provider interface of OCA's `account_statement_import_online`
(`online.bank.statement.provider._obtain_statement_data(date_since, date_until)`, returning
`(lines, statement_values)`), backed by any `erp:bank-sync` component.

Wiring it in an Odoo module is one class (Odoo itself is not imported here)::

    from odoo import fields, models
    from erp_bank_sync import Plugin
    from erp_bank_sync.odoo import OdooStatementSource

    PLUGIN = Plugin("/opt/erp-bank-sync/ponto_provider.wasm")  # checked and compiled once

    class OnlineBankStatementProvider(models.Model):
        _inherit = "online.bank.statement.provider"
        erp_bank_sync_state = fields.Char(readonly=True)

        def _obtain_statement_data(self, date_since, date_until):
            if self.service != "erp_bank_sync":
                return super()._obtain_statement_data(date_since, date_until)
            session = PLUGIN.session(str(self.id), "/var/lib/odoo/erp-bank-sync.sqlite",
                                     self._erp_bank_sync_settings())
            source = OdooStatementSource(session, self.account_number, self.erp_bank_sync_state)
            result = source.obtain_statement_data(date_since, date_until)
            # Saved in the same database transaction as the lines Odoo creates from `result`:
            # a rolled-back pull re-reads from the previous state.
            self.erp_bank_sync_state = source.state
            return result

Amounts are `decimal.Decimal` (exact, as the bank gave them), never floats.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from . import types as t
from .host import Session


def _day(value: dt.date | dt.datetime | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value[:10])


def line_values(line: t.StatementLine) -> dict:
    """One `account.bank.statement.line` values dict, as OCA's providers build them."""
    vals = {
        "sequence": 1,
        "date": dt.date.fromisoformat(line.booking_date),
        "amount": Decimal(line.amount),
        "payment_ref": line.payment_reference or "/",
        "ref": line.description or "",
        "unique_import_id": line.transaction_id,
        "raw_data": line.raw_json,
    }
    if line.partner_account:
        vals["account_number"] = line.partner_account
    if line.partner_name:
        vals["partner_name"] = line.partner_name
    return vals


class OdooStatementSource:
    """One online account's statement data for Odoo. `state` is the provider's sync state:
    keep it with the journal (a field) and pass it back next time."""

    def __init__(
        self,
        session: Session,
        account_id: str,
        state: Optional[str] = None,
        customer_ip: Optional[str] = None,
        max_lines: int = 1000,
    ):
        self.session = session
        self.account_id = account_id
        self.state = state or None
        self.customer_ip = customer_ip
        self.max_lines = max_lines
        self.warnings: list[t.Warning] = []

    def obtain_statement_data(
        self, date_since: dt.date | dt.datetime, date_until: dt.date | dt.datetime
    ) -> tuple[list[dict], dict]:
        """Sync the account to done (reading back to `date_since` at least) and return the lines
        booked from `date_since` until before `date_until`, with `balance_start` and
        `balance_end_real` of that period when the provider's statements cover it. Lines the
        bank changed after booking come again under the same `unique_import_id`."""
        since, until = _day(date_since), _day(date_until)
        lines: dict[str, t.StatementLine] = {}
        statements: dict[str, t.Statement] = {}
        for batch in self.session.sync_batches(
            self.account_id,
            state=self.state,
            customer_ip=self.customer_ip,
            since=since.isoformat(),
            max_lines=self.max_lines,
        ):
            for line in batch.lines + batch.updated_lines:
                lines[line.transaction_id] = line
            for s in batch.statements:
                statements[s.key] = s
            self.warnings += batch.warnings
            if batch.progress.done:
                self.state = batch.progress.value
        inside = [
            line
            for line in lines.values()
            if since <= dt.date.fromisoformat(line.booking_date) < until
        ]
        inside.sort(key=lambda line: (line.booking_date, line.transaction_id))
        covered = sorted(
            (
                s
                for s in statements.values()
                if since <= dt.date.fromisoformat(s.date_from)
                and dt.date.fromisoformat(s.date_to) < until
            ),
            key=lambda s: (s.date_from, s.key),
        )
        values = {}
        if covered:
            values = {
                "balance_start": Decimal(covered[0].balance_start),
                "balance_end_real": Decimal(covered[-1].balance_end),
            }
        return [line_values(line) for line in inside], values
