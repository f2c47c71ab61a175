"""The OCA-shaped adapter returns `_obtain_statement_data`'s `(lines, statement_values)`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from erp_bank_sync.odoo import OdooStatementSource

from test_flow import connect


def test_obtain_statement_data_gives_oca_line_and_statement_values(session):
    connection = connect(session, session.list_institutions()[0].id)
    account = connection.accounts[0]
    source = OdooStatementSource(session, account.id)
    lines, values = source.obtain_statement_data(dt.date(2000, 1, 1), dt.date(2100, 1, 1))
    assert lines and source.state
    first = lines[0]
    assert {"date", "amount", "payment_ref", "unique_import_id", "raw_data"} <= first.keys()
    assert isinstance(first["amount"], Decimal) and isinstance(first["date"], dt.date)
    assert len({line["unique_import_id"] for line in lines}) == len(lines)
    assert any("partner_name" in line for line in lines)
    assert [line["date"] for line in lines] == sorted(line["date"] for line in lines)
    # The period's balances explain its lines exactly.
    total = sum((line["amount"] for line in lines), Decimal(0))
    assert values["balance_end_real"] - values["balance_start"] == total

    # A window keeps only its own days.
    day = lines[len(lines) // 2]["date"]
    again = OdooStatementSource(session, account.id)
    window, _ = again.obtain_statement_data(day, day + dt.timedelta(days=1))
    assert window and all(line["date"] == day for line in window)
