//! A focused micro-benchmark of the ERP's insert path (`Db::apply_batch`), with realistic lines
//! (UUID transaction ids, ~1 KB of raw JSON, ~140 lines a day). Ignored by default; run it in
//! release: `cargo test --release -p host-harness --lib store_bench -- --ignored --nocapture`
//! (`STORE_BENCH_LINES`, `STORE_BENCH_BATCH` and `STORE_BENCH_DIR` change the sizes and place).

use std::time::Instant;

use super::fixtures::{account, batch, institution, line, statement};
use crate::erp::store::Db;
use crate::runtime::types::*;

/// A deterministic pseudo-random UUID (xorshift), so runs compare.
fn uuid(state: &mut u64) -> String {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// A line as a real bank sends it (UUID id, ~1 KB of raw JSON, ~140 lines a day): the shared
/// [`line`] with realistic fields.
pub fn realistic_line(seq: u64, state: &mut u64) -> StatementLine {
    let id = uuid(state);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        - chrono::TimeDelta::days((seq / 140) as i64);
    let day = day.format("%Y-%m-%d").to_string();
    let amount = format!("{}.{:02}", (seq * 37) % 5000, seq % 100);
    let raw = format!(
        "{{\"attributes\":{{\"additionalInformation\":null,\"amount\":{amount},\"bankTransactionCode\":\"PMNT-RCDT-ESCT\",\"cardReference\":null,\"cardReferenceType\":null,\"counterpartName\":\"Rice Ltd\",\"counterpartReference\":\"BE62 4671 5332 7786\",\"createdAt\":\"{day}T06:02:11.000Z\",\"creditorId\":null,\"currency\":\"EUR\",\"description\":\"Wire transfer\",\"digest\":\"2acc87e558b508f7b4bd21829adee7aaace14eedde2b65ec8459201ea7a76050\",\"endToEndId\":\"e2e-{seq:08x}\",\"executionDate\":\"{day}T23:00:00.000Z\",\"fee\":null,\"internalReference\":\"ae7976b0\",\"mandateId\":null,\"proprietaryBankTransactionCode\":\"63058\",\"purposeCode\":null,\"remittanceInformation\":\"090933755493\",\"remittanceInformationType\":\"structured\",\"updatedAt\":\"2026-11-25T08:13:03.072Z\",\"valueDate\":\"{day}T23:00:00Z\"}},\"id\":\"{id}\",\"relationships\":{{\"account\":{{\"data\":{{\"id\":\"0df6d359-a2fb-4f41-bc4c-3c824d8a1a03\",\"type\":\"account\"}}}}}},\"type\":\"transaction\"}}"
    );
    StatementLine {
        payment_reference: "+++090/9337/55493+++".into(),
        structured_reference: true,
        description: Some("Wire transfer".into()),
        partner_name: Some("Rice Ltd".into()),
        partner_account: Some("BE62 4671 5332 7786".into()),
        end_to_end_id: Some(format!("e2e-{seq:08x}")),
        bank_transaction_code: Some("PMNT-RCDT-ESCT".into()),
        raw_json: raw,
        ..line(&id, &day, &amount)
    }
}

/// Batches of `per_batch` lines, `n` lines in all, with their statements and cursors.
pub fn realistic_batches(n: u64, per_batch: u64) -> Vec<SyncBatch> {
    let mut state = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::new();
    let mut seq = 0;
    while seq < n {
        let end = (seq + per_batch).min(n);
        let lines: Vec<_> = (seq..end).map(|s| realistic_line(s, &mut state)).collect();
        let mut days: Vec<String> = lines.iter().map(|l| l.statement_key.clone()).collect();
        days.dedup();
        let statements = days
            .iter()
            .map(|d| statement(d, "100.00", "200.00"))
            .collect();
        let progress = if end == n {
            SyncProgress::Done("state".into())
        } else {
            SyncProgress::More(format!("page-{end}"))
        };
        out.push(SyncBatch {
            transactions_read: end,
            ..batch(lines, statements, progress)
        });
        seq = end;
    }
    out
}

#[test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
fn store_bench() {
    let n: u64 = std::env::var("STORE_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let per_batch: u64 = std::env::var("STORE_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let batches = realistic_batches(n, per_batch);
    let raw: usize = batches
        .iter()
        .flat_map(|b| &b.lines)
        .map(|l| l.raw_json.len())
        .sum();
    let dir =
        tempfile::tempdir_in(std::env::var("STORE_BENCH_DIR").unwrap_or("/tmp".into())).unwrap();
    let path = dir.path().join("bench.sqlite");
    let mut db = Db::open(&path).unwrap();
    let connection = Connection {
        organization_id: "org".into(),
        organization_name: None,
        institution: institution("inst-1"),
        accounts: vec![account("acc-1", "BE00 0000 0000 0001")],
        authorized_account_count: 1,
    };
    let (link, _) = db
        .save_connection(None, "bench-conn", "acme", &connection)
        .unwrap();
    let acc = db.accounts(Some(link)).unwrap().remove(0);
    let resume = db.begin_run(&acc).unwrap();
    let t = Instant::now();
    let mut stored = 0;
    for b in &batches {
        stored += db
            .apply_batch(&acc, resume.run_id, link, b)
            .unwrap()
            .new_lines;
    }
    let first = t.elapsed();
    assert_eq!(stored, n);
    // A second pass (a re-read of the same history) adds nothing.
    let resume = db.begin_run(&acc).unwrap();
    let t = Instant::now();
    let mut again = 0;
    for b in &batches {
        again += db
            .apply_batch(&acc, resume.run_id, link, b)
            .unwrap()
            .new_lines;
    }
    let second = t.elapsed();
    assert_eq!(again, 0);
    let size = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(format!("{}-wal", path.display()))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "store_bench: {n} lines (raw JSON {:.0} B avg): first {:.2} s = {:.1} µs/line = {:.0} lines/s; \
         re-read {:.1} µs/line; db+wal {:.1} MiB",
        raw as f64 / n as f64,
        first.as_secs_f64(),
        first.as_secs_f64() * 1e6 / n as f64,
        n as f64 / first.as_secs_f64(),
        second.as_secs_f64() * 1e6 / n as f64,
        size as f64 / 1048576.0
    );
}
