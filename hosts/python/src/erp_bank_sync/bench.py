"""`python -m erp_bank_sync.bench [--transactions N]`: sync N transactions from one sandbox
through the Rust ERP (`target/release/erp sync`) and through this Python host (into its sqlite
ledger), in the same run, and print both times and their ratio (goal: Python <= 3x Rust).

Both do the same work: a first sync of every account of the sandbox's first institution, as a
scheduled job (no customer IP), 1000 lines per batch, each batch committed to SQLite. Connecting
is not timed. The Rust time is the whole `erp sync` process (start-up and cached component load
included, a few tens of ms)."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from . import HostOptions, Plugin
from .books import Ledger
from .sandbox import REPO, RustErp, Sandbox, auto_consent, erp_binary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", default="release", choices=["release", "debug"])
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; the best time of each host is compared"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the plugin's per-request lines are not the point

    erp = erp_binary(args.profile)
    wasm = REPO / "target" / "wasm" / "wasm32-wasip2" / "release" / "ponto_provider.wasm"
    plugin = Plugin(wasm, HostOptions())
    sandbox = Sandbox.start(args.seed, args.transactions, args.profile)
    rust_times, python_times = [], []
    try:
        for round in range(1, args.repeat + 1):
            rust_s, rust_lines, python_s, python_lines = _round(plugin, erp, sandbox, round)
            print(
                f"round {round}: Rust ERP {rust_lines} lines in {rust_s:.2f} s, "
                f"Python host {python_lines} lines in {python_s:.2f} s",
                flush=True,
            )
            if rust_lines != python_lines:
                raise SystemExit(f"the hosts disagree: {rust_lines} lines against {python_lines}")
            rust_times.append(rust_s)
            python_times.append(python_s)
    finally:
        sandbox.stop()

    rust_s, python_s = min(rust_times), min(python_times)
    print(f"transactions on the first account: {args.transactions} (seed {args.seed})")
    print(f"Rust ERP ({args.profile}): {rust_lines} lines in {rust_s:.2f} s")
    print(f"Python host (wasmtime-py): {python_lines} lines in {python_s:.2f} s")
    print(f"ratio Python / Rust: {python_s / rust_s:.2f}x (goal <= 3x)")


def _round(plugin: Plugin, erp: Path, sandbox: Sandbox, round: int) -> tuple[float, int, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        session = plugin.session(f"bench-{round}", work / "kv.sqlite", sandbox.provider_config())
        institution = session.list_institutions()[0].id

        rust = RustErp(erp, work / "erp.sqlite", sandbox)
        rust.connect(institution)
        started = time.perf_counter()
        rust.sync()
        rust_s = time.perf_counter() - started
        rust_lines = _count(rust.db)

        start = session.begin_connect(institution, "http://127.0.0.1:8765/callback")
        connection = session.complete_connect(auto_consent(start.authorization_url))
        ledger = Ledger(work / "python.sqlite")
        started = time.perf_counter()
        for account in connection.accounts:
            ledger.add_account(account)
            for batch in session.sync_batches(account.id, max_lines=1000):
                ledger.apply(account.id, batch)
        python_s = time.perf_counter() - started
        python_lines = ledger.line_count()
        ledger.close()
        session.close()
        return rust_s, rust_lines, python_s, python_lines


def _count(db: Path) -> int:
    import sqlite3

    return sqlite3.connect(db).execute("SELECT COUNT(*) FROM statement_lines").fetchone()[0]


if __name__ == "__main__":
    main()
