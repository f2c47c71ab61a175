// A minimal ledger for one connection, applying sync batches the way the Rust ERP does
// (host-harness/src/erp/store/sync_runs.rs `apply_batch`): a new line is kept once per account (its
// transaction id is its key), an updated line replaces the one held, a statement is upserted by
// its key, and the state of the last completed sync is kept for the next one. An ERP keeps these
// in its own tables; this one serves the tests, the equal-books dump and the benchmark.

import { canonicalAmount } from './decimal.mjs';

const byString = (f) => (a, b) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);

export class Books {
  constructor() {
    /** @type {Map<string, {lines: Map<string, object>, statements: Map<string, object>, state?: string, account?: object}>} */
    this.accounts = new Map();
  }

  #of(accountId) {
    if (!this.accounts.has(accountId)) this.accounts.set(accountId, { lines: new Map(), statements: new Map() });
    return this.accounts.get(accountId);
  }

  /** Applies one batch; returns how many lines were new. */
  apply(accountId, batch) {
    const book = this.#of(accountId);
    let added = 0;
    if (batch.account) book.account = batch.account;
    for (const line of batch.lines) {
      if (!book.lines.has(line.transactionId)) {
        book.lines.set(line.transactionId, line);
        added += 1;
      }
    }
    for (const line of batch.updatedLines) {
      if (book.lines.has(line.transactionId)) book.lines.set(line.transactionId, line);
    }
    for (const s of batch.statements) book.statements.set(s.key, s);
    if (batch.progress.tag === 'done') book.state = batch.progress.val;
    return added;
  }

  state(accountId) {
    return this.accounts.get(accountId)?.state;
  }

  /**
   * The books as hosts/books-format.md's neutral document, for `accounts` (the connection's
   * authorised accounts, which give each account's reference and currency).
   */
  dump(accounts) {
    const amount = (a, currency) => canonicalAmount(a, currency);
    return {
      format: 'erp-bank-sync-books/1',
      accounts: [...accounts].sort(byString((a) => a.id)).map((account) => {
        const book = this.accounts.get(account.id) ?? { lines: new Map(), statements: new Map() };
        return {
          account_id: account.id,
          reference: account.reference,
          currency: account.currency,
          statements: [...book.statements.values()].sort(byString((s) => s.key)).map((s) => ({
            key: s.key,
            name: s.name,
            date_from: s.dateFrom,
            date_to: s.dateTo,
            balance_start: amount(s.balanceStart, account.currency),
            balance_end: amount(s.balanceEnd, account.currency),
          })),
          lines: [...book.lines.values()]
            .sort((a, b) => byString((l) => l.bookingDate)(a, b) || byString((l) => l.transactionId)(a, b))
            .map((l) => ({
              transaction_id: l.transactionId,
              statement_key: l.statementKey,
              booking_date: l.bookingDate,
              value_date: l.valueDate ?? null,
              amount: amount(l.amount, l.currency),
              currency: l.currency,
              payment_reference: l.paymentReference,
              structured_reference: l.structuredReference,
              partner_name: l.partnerName ?? null,
              partner_account: l.partnerAccount ?? null,
              end_to_end_id: l.endToEndId ?? null,
            })),
        };
      }),
    };
  }
}

/**
 * Synchronises one account to done, batch by batch, applying each batch to `books`.
 * @returns {{ batches: number, newLines: number, transactionsRead: bigint, warnings: object[] }}
 */
export function syncAccount(provider, accountId, books, { maxLines = 1000, since, customerIp } = {}) {
  let cursor;
  const out = { batches: 0, newLines: 0, transactionsRead: 0n, warnings: [] };
  for (;;) {
    const batch = provider.sync({ accountId, cursor, state: books.state(accountId), since, customerIp, maxLines });
    out.batches += 1;
    out.newLines += books.apply(accountId, batch);
    out.transactionsRead = batch.transactionsRead;
    out.warnings.push(...batch.warnings);
    if (batch.progress.tag === 'done') return out;
    cursor = batch.progress.val;
  }
}
