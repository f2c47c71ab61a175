// Benchmarks of the Node host. `node hosts/node/bench.mjs [--transactions N] [--seed S]`:
// a first sync of N transactions (default 100,000) from one sandbox through the Node host and
// through the Rust ERP (`erp plugin install`, `erp connect begin`/`finish` + `erp sync`, release build if present),
// both committing every batch to SQLite; both times and their ratio (median of --runs, default
// 3). `--bridge [--requests N]`: the cost of the synchronous HTTP bridge (worker thread +
// Atomics.wait) against plain async requests, and of a child process per request.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { loadProvider } from './src/index.mjs';
import { HttpCapability, parseOrigin } from './src/capabilities/http.mjs';
import { Books, syncAccount } from './src/books.mjs';
import { autoConsent, COMPONENT, ensureBuilt, PONTO_GRANTS, ROOT, sandboxConfig, startSandbox } from './test/support.mjs';
import { rustConnect } from './test/rust-books.mjs';

const { values: args } = parseArgs({
  options: {
    transactions: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '7' },
    bridge: { type: 'boolean', default: false },
    requests: { type: 'string', default: '2000' },
    runs: { type: 'string', default: '3' },
  },
});
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const ms = (t) => `${t.toFixed(2)} ms`;


async function bridge(n) {
  const sandbox = await startSandbox({ seed: 7, transactions: 10 });
  try {
    const url = `${sandbox.apiUrl}/financial-institutions?page[limit]=1`;
    const agent = new http.Agent({ keepAlive: true });
    const asyncGet = () =>
      new Promise((resolve, reject) => {
        http.get(url, { agent }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        }).on('error', reject);
      });
    const cap = new HttpCapability(
      { allowed: ['http://127.0.0.1:*'].map(parseOrigin), timeoutMs: 30_000, maxResponseBytes: 1 << 24 },
      { plugin: 'bench', connection: 'bench', logger: quiet },
    );
    const request = { method: 'get', url, headers: [], body: { tag: 'text', val: '' }, timeoutMs: undefined };
    for (let i = 0; i < 50; i++) {
      await asyncGet();
      cap.send(request);
    }
    let t = performance.now();
    for (let i = 0; i < n; i++) await asyncGet();
    const plain = (performance.now() - t) / n;
    t = performance.now();
    for (let i = 0; i < n; i++) if (cap.send(request).tag !== 'ok') throw new Error('bridge request failed');
    const bridged = (performance.now() - t) / n;
    // The handoff alone: a message to a worker that answers at once, the caller in Atomics.wait.
    const signal = new SharedArrayBuffer(4);
    const flag = new Int32Array(signal);
    const { port1, port2 } = new MessageChannel();
    const echo = new Worker(
      `const { workerData: { port, signal } } = require('node:worker_threads');
       const flag = new Int32Array(signal);
       port.on('message', (m) => { port.postMessage(m); Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); });`,
      { eval: true, workerData: { port: port2, signal }, transferList: [port2] },
    );
    const roundTrip = () => {
      Atomics.store(flag, 0, 0);
      port1.postMessage(request);
      Atomics.wait(flag, 0, 0);
      return receiveMessageOnPort(port1);
    };
    for (let i = 0; i < 100; i++) roundTrip();
    t = performance.now();
    for (let i = 0; i < n; i++) roundTrip();
    const handoff = (performance.now() - t) / n;
    await echo.terminate();
    const m = 20;
    const script = `fetch(${JSON.stringify(url)}).then(r => r.arrayBuffer()).then(b => process.stdout.write(String(b.byteLength)))`;
    t = performance.now();
    for (let i = 0; i < m; i++) spawnSync(process.execPath, ['-e', script]);
    const child = (performance.now() - t) / m;
    cap.close();
    console.log(`one request, sequential, against the sandbox (${n} requests; ${m} for the child process):`);
    console.log(`  plain async node:http (event loop free)    ${ms(plain)}`);
    console.log(`  worker thread + Atomics.wait (synchronous) ${ms(bridged)}  overhead ${ms(bridged - plain)}`);
    console.log(`    of which the thread handoff alone        ${(handoff * 1000).toFixed(0)} us (a worker answering at once)`);
    console.log(`  child process per request (spawnSync)      ${ms(child)}`);
    console.log('  JSPI: not available on Node 20 (V8 11.3 has only the old WebAssembly.Suspender API; jco 1.35 needs WebAssembly.Suspending)');
  } finally {
    sandbox.stop();
  }
}

/** The ledger thread: commits each batch's lines and statements to SQLite in one transaction. */
const LEDGER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path);
// As the Rust ERP's database: WAL, NORMAL (each batch is committed with its cursor, so a power
// cut costs a refetch, never consistency), a 16 MiB page cache.
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('cache_size = -16384');
db.exec(\`CREATE TABLE lines (account TEXT, id TEXT, statement TEXT, booking_date TEXT, amount TEXT,
           currency TEXT, reference TEXT, partner TEXT, raw_json TEXT, PRIMARY KEY (account, id));
         CREATE TABLE statements (account TEXT, key TEXT, name TEXT, balance_start TEXT, balance_end TEXT,
           PRIMARY KEY (account, key));\`);
const line = db.prepare('INSERT OR IGNORE INTO lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
const statement = db.prepare('INSERT OR REPLACE INTO statements VALUES (?, ?, ?, ?, ?)');
let busy = 0;
const commit = db.transaction(({ account, lines, statements }) => {
  for (const l of lines) {
    line.run(account, l.transactionId, l.statementKey, l.bookingDate, l.amount, l.currency, l.paymentReference, l.partnerName ?? null, l.rawJson);
  }
  for (const st of statements) statement.run(account, st.key, st.name, st.balanceStart, st.balanceEnd);
});
parentPort.on('message', (m) => {
  if (m === 'flush') {
    db.close();
    return parentPort.postMessage(busy / 1000);
  }
  const t = performance.now();
  commit(m);
  busy += performance.now() - t;
});
`;

/**
 * Books whose batches are also committed to SQLite on a ledger thread, while the plugin reads
 * the next page: the Rust ERP's design (a writer thread commits each batch with its cursor).
 */
class SqliteBooks extends Books {
  constructor(path) {
    super();
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(LEDGER, { eval: true, workerData: { path, sqlite } });
  }

  apply(accountId, batch) {
    this.worker.postMessage({ account: accountId, lines: batch.lines, statements: batch.statements });
    return super.apply(accountId, batch);
  }

  /** Waits for every commit; returns the ledger thread's busy seconds. */
  async flush() {
    this.worker.postMessage('flush');
    const [busy] = await once(this.worker, 'message');
    await this.worker.terminate();
    return busy;
  }
}

async function firstSync(transactions, seed, runs) {
  const releaseErp = join(ROOT, 'target/release/erp');
  const erp = existsSync(releaseErp) ? releaseErp : ensureBuilt();
  const sandbox = await startSandbox({ seed, transactions });
  const dir = mkdtempSync(join(tmpdir(), 'erp-node-bench-'));
  const times = { node: [], rust: [], commit: [] };
  let lines = 0;
  try {
    for (let run = 0; run < runs; run++) {
      // The Node host: connect, then sync every account of the connection into SQLite.
      const provider = await loadProvider(COMPONENT, {
        connection: `bench-${run}`,
        config: sandboxConfig(sandbox),
        grantedOrigins: PONTO_GRANTS,
        storagePath: join(dir, `node-plugin-${run}.sqlite`),
        logger: quiet,
      });
      const institution = provider.listInstitutions({})[0];
      const start = provider.beginConnect(institution.id, 'http://127.0.0.1:9/callback');
      const connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
      const books = new SqliteBooks(join(dir, `node-books-${run}.sqlite`));
      lines = 0;
      let t = performance.now();
      for (const account of connection.accounts) lines += syncAccount(provider, account.id, books).newLines;
      times.commit.push(await books.flush());
      times.node.push((performance.now() - t) / 1000);
      provider.close();

      // The Rust ERP, same sandbox, its own database.
      const env = {
        ...process.env,
        ERP_DB: join(dir, `erp-${run}.sqlite`),
        PONTO_API_URL: sandbox.apiUrl,
        PONTO_AUTH_URL: sandbox.authUrl,
        PONTO_CLIENT_ID: 'sandbox-client-id',
        PONTO_CLIENT_SECRET: 'sandbox-client-secret',
      };
      const erpRun = (...a) => {
        const r = spawnSync(erp, a, { env, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`erp ${a.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      await rustConnect(erpRun, institution.id);
      t = performance.now();
      erpRun('sync');
      times.rust.push((performance.now() - t) / 1000);
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const list = (xs) => xs.map((x) => x.toFixed(2)).join(', ');
    const [node, rust] = [median(times.node), median(times.rust)];
    console.log(`first sync of ${transactions} transactions (seed ${seed}), every account of one connection, ${runs} run(s), median:`);
    console.log(`  Node host (jco, ${process.version}, each batch committed to SQLite on a ledger thread): ${node.toFixed(2)} s (${list(times.node)}), ${lines} lines; the ledger thread busy ${median(times.commit).toFixed(2)} s`);
    console.log(`  Rust ERP (${erp === releaseErp ? 'release' : 'DEBUG build: build --release for a fair figure'}, \`erp sync\`, process start included): ${rust.toFixed(2)} s (${list(times.rust)})`);
    console.log(`  ratio Node / Rust: ${(node / rust).toFixed(2)}x (goal <= 3x)`);
  } finally {
    sandbox.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.bridge) await bridge(Number(args.requests));
else await firstSync(Number(args.transactions), Number(args.seed), Number(args.runs));
