// A minimal ledger for one connection, applying sync batches the way the Rust ERP does
// (host-harness/src/erp/db.rs `apply_batch`): a new line is kept once per account (its
// transaction id is its key), an updated line replaces the one held, a statement is upserted by
// its key, and the state of the last completed sync is kept for the next one. An ERP keeps these
// in its own tables; this one serves the tests, the equal-books dump and the benchmark.

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
