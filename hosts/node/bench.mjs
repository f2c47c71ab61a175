// Benchmarks of the Node host. `node hosts/node/bench.mjs [--transactions N] [--seed S]`:
// a first sync of N transactions (default 100,000) from one sandbox through the Node host and
// through the Rust ERP (`erp connect --auto-consent` + `erp sync`, release build if present),
// both times and their ratio. `--bridge [--requests N]`: the cost of the synchronous HTTP
// bridge (worker thread + Atomics.wait) against plain async requests, and of a child process per
// request.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { loadProvider } from './src/index.mjs';
import { HttpCapability, parseOrigin } from './src/capabilities/http.mjs';
import { Books, syncAccount } from './src/books.mjs';
import { autoConsent, COMPONENT, ensureBuilt, ROOT, SANDBOX_ORIGINS, sandboxConfig, startSandbox } from './test/support.mjs';

const { values: args } = parseArgs({
  options: {
    transactions: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '7' },
    bridge: { type: 'boolean', default: false },
    requests: { type: 'string', default: '2000' },
  },
});
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const ms = (t) => `${t.toFixed(1)} ms`;

if (args.bridge) await bridge(Number(args.requests));
else await firstSync(Number(args.transactions), Number(args.seed));

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
      { allowed: SANDBOX_ORIGINS.map(parseOrigin), timeoutMs: 30_000, maxResponseBytes: 1 << 24 },
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
    const m = 20;
    const script = `fetch(${JSON.stringify(url)}).then(r => r.arrayBuffer()).then(b => process.stdout.write(String(b.byteLength)))`;
    t = performance.now();
    for (let i = 0; i < m; i++) spawnSync(process.execPath, ['-e', script]);
    const child = (performance.now() - t) / m;
    cap.close();
    console.log(`one request, sequential, against the sandbox (${n} requests; ${m} for the child process):`);
    console.log(`  plain async node:http (event loop free)    ${ms(plain)}`);
    console.log(`  worker thread + Atomics.wait (synchronous) ${ms(bridged)}  overhead ${ms(bridged - plain)}`);
    console.log(`  child process per request (spawnSync)      ${ms(child)}`);
    console.log('  JSPI: not available on Node 20 (V8 11.3 has only the old WebAssembly.Suspender API; jco 1.35 needs WebAssembly.Suspending)');
  } finally {
    sandbox.stop();
  }
}

async function firstSync(transactions, seed) {
  const releaseErp = join(ROOT, 'target/release/erp');
  const erp = existsSync(releaseErp) ? releaseErp : ensureBuilt();
  const sandbox = await startSandbox({ seed, transactions, erp });
  const dir = mkdtempSync(join(tmpdir(), 'erp-node-bench-'));
  try {
    // The Node host: connect, then sync every account of the connection.
    const provider = await loadProvider(COMPONENT, {
      connection: 'bench',
      config: sandboxConfig(sandbox),
      allowedOrigins: SANDBOX_ORIGINS,
      storagePath: join(dir, 'node-plugin.sqlite'),
      logger: quiet,
    });
    const institution = provider.listInstitutions({})[0];
    const start = provider.beginConnect(institution.id, 'http://127.0.0.1:9/callback');
    const connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
    const books = new Books();
    let lines = 0;
    let t = performance.now();
    for (const account of connection.accounts) lines += syncAccount(provider, account.id, books).newLines;
    const node = (performance.now() - t) / 1000;
    provider.close();

    // The Rust ERP, same sandbox, its own database.
    const env = {
      ...process.env,
      ERP_DB: join(dir, 'erp.sqlite'),
      PONTO_API_URL: sandbox.apiUrl,
      PONTO_AUTH_URL: sandbox.authUrl,
      PONTO_CLIENT_ID: 'sandbox-client-id',
      PONTO_CLIENT_SECRET: 'sandbox-client-secret',
    };
    const run = (...a) => {
      const r = spawnSync(erp, a, { env, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`erp ${a.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    run('connect', '--institution', institution.id, '--auto-consent');
    t = performance.now();
    run('sync');
    const rust = (performance.now() - t) / 1000;
    const rustLines = JSON.parse(run('status', '--json'));
    console.log(`first sync of ${transactions} transactions (seed ${seed}), every account of one connection:`);
    console.log(`  Node host (jco, ${process.version}): ${node.toFixed(2)} s, ${lines} lines`);
    console.log(`  Rust ERP (${erp === releaseErp ? 'release' : 'DEBUG build: build --release for a fair figure'}): ${rust.toFixed(2)} s (erp sync, process start included)`);
    console.log(`  ratio Node / Rust: ${(node / rust).toFixed(2)}x (goal <= 3x)`);
    void rustLines;
  } finally {
    sandbox.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
