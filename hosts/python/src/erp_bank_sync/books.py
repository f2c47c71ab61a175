"""A minimal ledger for the Python host (statement lines and statements in sqlite3, each sync
batch committed together with its progress), and the neutral books dump of
`hosts/books-format.md`, for this ledger and for the Rust ERP's database."""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
from decimal import Decimal
from pathlib import Path
from typing import Optional

from . import types as t

FORMAT = "erp-bank-sync-books/1"
LINE_FIELDS = (
    "transaction_id", "statement_key", "booking_date", "value_date", "amount", "currency",
    "payment_reference", "structured_reference", "partner_name", "partner_account", "end_to_end_id",
)
STATEMENT_FIELDS = ("key", "name", "date_from", "date_to", "balance_start", "balance_end")
# Digits of the minor unit (ISO 4217) where it is not 2.
_MINOR = {c: 0 for c in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()}
_MINOR.update({c: 3 for c in "BHD IQD JOD KWD LYD OMR TND".split()})
_MINOR.update({"CLF": 4, "UYW": 4})


def canonical_amount(text: str, currency: str) -> str:
    """Exact decimal padded to the currency's minor unit, never rounded, no negative zero."""
    d = Decimal(text)
    digits = _MINOR.get(currency, 2)
    if -d.as_tuple().exponent < digits:  # type: ignore[operator]
        d = d.quantize(Decimal(1).scaleb(-digits))
    if d.is_zero():
        d = abs(d)
    return f"{d:f}"


SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY, reference TEXT NOT NULL, currency TEXT NOT NULL,
    state TEXT, cursor TEXT
);
CREATE TABLE IF NOT EXISTS statements (
    account_id TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, date_from TEXT NOT NULL,
    date_to TEXT NOT NULL, balance_start TEXT NOT NULL, balance_end TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE TABLE IF NOT EXISTS lines (
    account_id TEXT NOT NULL, transaction_id TEXT NOT NULL, statement_key TEXT NOT NULL,
    booking_date TEXT NOT NULL, value_date TEXT, amount TEXT NOT NULL, currency TEXT NOT NULL,
    payment_reference TEXT NOT NULL, structured_reference INTEGER NOT NULL, partner_name TEXT,
    partner_account TEXT, end_to_end_id TEXT, raw_json TEXT NOT NULL,
    PRIMARY KEY (account_id, transaction_id)
);
"""


WAL_AUTOCHECKPOINT_PAGES = 16_384
CHECKPOINT_EVERY_BYTES = 16 * 1024 * 1024


class Ledger:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # As the Rust ERP: NORMAL is safe under WAL (a killed process never loses a committed
        # batch; a power cut loses at most the last batches, and each is committed with its own
        # cursor, so the next sync fetches them again). The plugin's token store keeps FULL.
        self.db.execute("PRAGMA synchronous=NORMAL")
        # The primary key takes random inserts: keep its pages in memory (at most 16 MiB).
        self.db.execute("PRAGMA cache_size=-16384")
        # Checkpoints (two fsyncs each) are what a first sync would wait on: as in the Rust ERP,
        # a background connection runs them every CHECKPOINT_EVERY_BYTES written; the automatic
        # one stays only as a bound should that thread fall behind.
        self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        self.db.executescript(SCHEMA)
        self._written = 0
        self._closed = False
        self._checkpoint = threading.Event()
        threading.Thread(target=self._checkpointer, name="ledger-checkpoint", daemon=True).start()

    def _checkpointer(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        while self._checkpoint.wait():
            self._checkpoint.clear()
            if self._closed:
                break
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        db.close()

    def close(self) -> None:
        self._closed = True
        self._checkpoint.set()
        self.db.close()

    def add_account(self, account: t.Account) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO accounts (account_id, reference, currency) VALUES (?, ?, ?)",
            (account.id, account.reference, account.currency),
        )

    def resume(self, account_id: str) -> tuple[Optional[str], Optional[str]]:
        """(state, cursor) to start or resume this account's sync with."""
        row = self.db.execute(
            "SELECT state, cursor FROM accounts WHERE account_id = ?", (account_id,)
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def apply(self, account_id: str, batch: t.SyncBatch) -> None:
        """One batch and its progress, in one transaction."""
        rows = [(account_id, *_LINE_ROW(line)) for line in batch.lines]
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                f"INSERT OR IGNORE INTO lines (account_id, {', '.join(LINE_FIELDS)}, raw_json)"
                f" VALUES ({', '.join('?' * (len(LINE_FIELDS) + 2))})",
                rows,
            )
            db.executemany(
                f"INSERT OR REPLACE INTO lines (account_id, {', '.join(LINE_FIELDS)}, raw_json)"
                f" VALUES ({', '.join('?' * (len(LINE_FIELDS) + 2))})",
                [(account_id, *_LINE_ROW(line)) for line in batch.updated_lines],
            )
            db.executemany(
                "INSERT OR REPLACE INTO statements VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(account_id, *(getattr(s, f) for f in STATEMENT_FIELDS)) for s in batch.statements],
            )
            if batch.progress.done:
                db.execute(
                    "UPDATE accounts SET state = ?, cursor = NULL WHERE account_id = ?",
                    (batch.progress.value, account_id),
                )
            else:
                db.execute(
                    "UPDATE accounts SET cursor = ? WHERE account_id = ?",
                    (batch.progress.value, account_id),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._written += sum(len(row[-1]) for row in rows)
        if self._written >= CHECKPOINT_EVERY_BYTES:
            self._written = 0
            self._checkpoint.set()

    def statements(self, account_id: str) -> list[t.Statement]:
        rows = self.db.execute(
            f"SELECT {', '.join(STATEMENT_FIELDS)} FROM statements WHERE account_id = ? ORDER BY date_from, key",
            (account_id,),
        )
        return [t.Statement(*r) for r in rows]

    def line_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM lines").fetchone()[0]

    def dump(self) -> dict:
        return _dump(self.db, "SELECT account_id, reference, currency FROM accounts", "account_id")


# A line's column values in LINE_FIELDS order, then raw_json (sqlite stores a bool as 0/1).
_LINE_ROW = operator.attrgetter(*LINE_FIELDS, "raw_json")


def dump_rust_erp(db_path: str | Path) -> dict:
    """The books of the Rust ERP's database (`erp` CLI, `ERP_DB`), in the same format."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    db.executescript(
        """CREATE TEMP VIEW accounts AS
             SELECT provider_account_id AS account_id, reference, currency, journal_id
             FROM online_accounts;
           CREATE TEMP VIEW lines AS
             SELECT a.provider_account_id AS account_id, l.* FROM statement_lines l
             JOIN online_accounts a ON a.id = l.online_account_id;
           CREATE TEMP VIEW statements_by_account AS
             SELECT a.provider_account_id AS account_id, s.* FROM statements s
             JOIN online_accounts a ON a.journal_id = s.journal_id;"""
    )
    return _dump(db, "SELECT account_id, reference, currency FROM accounts", "account_id", "statements_by_account")


def _dump(db: sqlite3.Connection, accounts_sql: str, key: str, statements_table: str = "statements") -> dict:
    accounts = []
    for account_id, reference, currency in sorted(db.execute(accounts_sql)):
        statements = [
            dict(zip(STATEMENT_FIELDS, row))
            for row in db.execute(
                f"SELECT {', '.join(STATEMENT_FIELDS)} FROM {statements_table} WHERE {key} = ? ORDER BY key",
                (account_id,),
            )
        ]
        for s in statements:
            s["balance_start"] = canonical_amount(s["balance_start"], currency)
            s["balance_end"] = canonical_amount(s["balance_end"], currency)
        lines = []
        for row in db.execute(
            f"SELECT {', '.join(LINE_FIELDS)} FROM lines WHERE {key} = ? ORDER BY booking_date, transaction_id",
            (account_id,),
        ):
            line = dict(zip(LINE_FIELDS, row))
            line["amount"] = canonical_amount(line["amount"], line["currency"])
            line["structured_reference"] = bool(line["structured_reference"])
            lines.append(line)
        accounts.append(
            {
                "account_id": account_id,
                "reference": reference,
                "currency": currency,
                "statements": statements,
                "lines": lines,
            }
        )
    return {"format": FORMAT, "accounts": accounts}


def write(books: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(books, indent=2, ensure_ascii=False) + "\n")
