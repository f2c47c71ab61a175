// `interface storage`: a private key-value store on SQLite, scoped to one (plugin, connection),
// the same table and rules as the Rust host (host-harness/src/capabilities/storage/): every
// write in its own IMMEDIATE transaction with synchronous=FULL, so it is on disk when the call
// returns (a refresh token rotated by the plugin survives a crash one instruction later), a quota
// of keys and value bytes, and compare-and-swap for single-use token rotation.
// Not ported: the Rust host's optional encryption at rest (enc:v1 values are refused, not read).

import Database from 'better-sqlite3';

const SCHEMA = `CREATE TABLE IF NOT EXISTS plugin_storage (
    plugin TEXT NOT NULL,
    connection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (plugin, connection, key)
) WITHOUT ROWID;`;

const ENC_PREFIX = 'enc:v1:';
const ok = (val) => ({ tag: 'ok', val });
const unavailable = (e) => ({ tag: 'err', val: { tag: 'unavailable', val: String(e?.message ?? e) } });
const quotaExceeded = (why) => ({ tag: 'err', val: { tag: 'quota-exceeded', val: why } });

/** Thrown inside a transaction to roll it back and answer with `result`. */
class Refusal {
  constructor(result) {
    this.result = result;
  }
}

export class StorageCapability {
  /**
   * @param {string} path SQLite file (created if needed)
   * @param {{plugin: string, connection: string, quota?: {maxKeys: number, maxValueBytes: number}}} scope
   */
  constructor(path, { plugin, connection, quota = { maxKeys: 1024, maxValueBytes: 64 * 1024 } }) {
    this.db = new Database(path, { timeout: 10_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    this.scope = [plugin, connection];
    this.quota = quota;
    const where = 'plugin = ? AND connection = ?';
    this.q = {
      get: this.db.prepare(`SELECT value FROM plugin_storage WHERE ${where} AND key = ?`).pluck(),
      put: this.db.prepare(
        `INSERT INTO plugin_storage (plugin, connection, key, value) VALUES (?, ?, ?, ?)
         ON CONFLICT (plugin, connection, key) DO UPDATE SET value = excluded.value`,
      ),
      del: this.db.prepare(`DELETE FROM plugin_storage WHERE ${where} AND key = ?`),
      // `key >= prefix` plus a literal prefix test: LIKE would treat `%` and `_` in keys as wildcards.
      list: this.db
        .prepare(`SELECT key FROM plugin_storage WHERE ${where} AND key >= ? AND substr(key, 1, length(?)) = ? ORDER BY key`)
        .pluck(),
      count: this.db.prepare(
        `SELECT COUNT(*) AS n, COALESCE(SUM(key = ?), 0) AS present FROM plugin_storage WHERE ${where}`,
      ),
    };
  }

  #read(key) {
    const stored = this.q.get.get(...this.scope, key);
    if (stored !== undefined && stored.startsWith(ENC_PREFIX)) {
      throw new Refusal(
        unavailable(`the value of \`${key}\` is encrypted at rest by the Rust host; this host cannot read it`),
      );
    }
    return stored ?? null;
  }

  #write(key, value) {
    if (value === null) {
      this.q.del.run(...this.scope, key);
      return;
    }
    if (Buffer.byteLength(value, 'utf8') > this.quota.maxValueBytes) {
      throw new Refusal(quotaExceeded(`a value is limited to ${this.quota.maxValueBytes} bytes`));
    }
    const { n, present } = this.q.count.get(key, ...this.scope);
    if (present === 0 && n >= this.quota.maxKeys) {
      throw new Refusal(quotaExceeded(`a connection is limited to ${this.quota.maxKeys} keys`));
    }
    this.q.put.run(...this.scope, key, value);
  }

  /** Runs `f` in an IMMEDIATE transaction (the write lock up front, so a compare-and-swap
   * cannot interleave with another process's) and maps every failure to a typed error. */
  #tx(f) {
    try {
      return ok(this.db.transaction(f).immediate());
    } catch (e) {
      return e instanceof Refusal ? e.result : unavailable(e);
    }
  }

  get(key) {
    try {
      return ok(this.#read(key));
    } catch (e) {
      return e instanceof Refusal ? e.result : unavailable(e);
    }
  }

  set(key, value) {
    return this.#tx(() => this.#write(key, value));
  }

  delete(key) {
    return this.#tx(() => this.#write(key, null));
  }

  listKeys(prefix) {
    try {
      return ok(this.q.list.all(...this.scope, prefix, prefix, prefix));
    } catch (e) {
      return unavailable(e);
    }
  }

  /** Replace `key` by `next` (null deletes) only if it is `expected` (null: absent). */
  compareAndSwap(key, expected, next) {
    return this.#tx(() => {
      if (this.#read(key) !== (expected ?? null)) return false;
      this.#write(key, next ?? null);
      return true;
    });
  }

  /** Rolls back a transaction a stopped call left open. */
  rollbackOpen() {
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }

  close() {
    this.db.close();
  }
}
