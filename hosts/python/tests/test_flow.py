"""institutions -> headless connect -> accounts -> sync to done -> statements, against the
sandbox, through the Python host."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erp_bank_sync import ProviderError
from erp_bank_sync import types as t
from erp_bank_sync.books import Ledger
from erp_bank_sync.sandbox import auto_consent


def connect(session, institution_id: str) -> t.Connection:
    start = session.begin_connect(institution_id, "http://127.0.0.1:8765/callback")
    return session.complete_connect(auto_consent(start.authorization_url))


def sync_all(session, ledger: Ledger, accounts, customer_ip=None) -> list[t.SyncBatch]:
    batches = []
    for account in accounts:
        ledger.add_account(account)
        state, cursor = ledger.resume(account.id)
        for batch in session.sync_batches(account.id, state, cursor, customer_ip, max_lines=50):
            ledger.apply(account.id, batch)
            batches.append(batch)
    return batches


def test_the_whole_flow_gives_typed_objects_and_statements_that_chain(session, tmp_path):
    info = session.info()
    assert (info.id, info.api_version) == ("ponto", "0.2.0")
    institutions = session.list_institutions(t.InstitutionFilter(country="BE"))
    assert institutions and all(isinstance(i, t.Institution) for i in institutions)
    assert all(i.country == "BE" for i in institutions)
    bank = institutions[0]

    connection = connect(session, bank.id)
    assert connection.institution.id == bank.id
    assert connection.accounts, "the sandbox authorises accounts at its first bank"
    assert all(a.institution_id == bank.id for a in connection.accounts)
    assert connection.authorized_account_count >= len(connection.accounts)
    assert {a.id for a in session.list_accounts(bank.id)} == {a.id for a in connection.accounts}

    ledger = Ledger(tmp_path / "books.sqlite")
    batches = sync_all(session, ledger, connection.accounts, customer_ip="127.0.0.1")
    assert len(batches) > len(connection.accounts), "max_lines=50 splits the sync into batches"
    assert batches[-1].progress.done
    assert ledger.line_count() == sum(len(b.lines) for b in batches) > 100

    books = ledger.dump()
    for account in books["accounts"]:
        statements = account["statements"]
        assert statements
        by_key: dict[str, Decimal] = {}
        for line in account["lines"]:
            by_key[line["statement_key"]] = by_key.get(line["statement_key"], Decimal(0)) + Decimal(line["amount"])
        ordered = sorted(statements, key=lambda s: s["date_from"])
        for before, after in zip(ordered, ordered[1:]):
            assert before["balance_end"] == after["balance_start"], (before, after)
        for s in statements:
            moved = Decimal(s["balance_end"]) - Decimal(s["balance_start"])
            assert moved == by_key.get(s["key"], Decimal(0)), s

    # A second sync from the kept state brings nothing twice.
    before = ledger.line_count()
    sync_all(session, ledger, connection.accounts)
    assert ledger.line_count() == before


def test_a_provider_error_is_a_typed_exception(session):
    with pytest.raises(ProviderError) as raised:
        session.begin_connect("no-such-institution", "http://127.0.0.1:8765/callback")
    assert raised.value.kind in t.PROVIDER_ERROR_PAYLOADS
    # Without a connection there are no tokens: the provider says to connect.
    with pytest.raises(ProviderError) as raised:
        session.list_accounts()
    assert raised.value.kind == "reconnect-required", raised.value
