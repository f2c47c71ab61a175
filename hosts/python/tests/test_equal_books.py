"""Equal books: for one sandbox seed, the Rust ERP and the Python host put the same statement
lines (ids, dates, amounts, references) and statement balances in their books
(`hosts/books-format.md`). Set BOOKS_DIR to keep both dumps (for the Node host's comparison)."""

from __future__ import annotations

import os
from pathlib import Path

from erp_bank_sync import books
from erp_bank_sync.books import Ledger
from erp_bank_sync.sandbox import RustErp, erp_binary

from test_flow import connect, sync_all


def test_the_rust_erp_and_the_python_host_keep_identical_books(session, sandbox, tmp_path):
    institution = session.list_institutions()[0].id

    rust = RustErp(erp_binary(), tmp_path / "erp.sqlite", sandbox)
    rust.connect(institution)
    rust.sync(customer_ip="127.0.0.1")
    rust_books = books.dump_rust_erp(rust.db)

    connection = connect(session, institution)
    ledger = Ledger(tmp_path / "python-books.sqlite")
    sync_all(session, ledger, connection.accounts, customer_ip="127.0.0.1")
    python_books = ledger.dump()

    if os.environ.get("BOOKS_DIR"):
        out = Path(os.environ["BOOKS_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        books.write(rust_books, out / "rust.json")
        books.write(python_books, out / "python.json")

    accounts = rust_books["accounts"]
    assert accounts and all(a["lines"] and a["statements"] for a in accounts)
    assert sum(len(a["lines"]) for a in accounts) > 100
    # Field by field, so a difference is shown where it is.
    assert [a["account_id"] for a in python_books["accounts"]] == [a["account_id"] for a in accounts]
    for mine, theirs in zip(python_books["accounts"], accounts):
        assert mine["statements"] == theirs["statements"]
        assert mine["lines"] == theirs["lines"]
    assert python_books == rust_books
