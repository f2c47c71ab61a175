// Equal books: for one sandbox seed, the Node host and the Rust ERP hold the same statement
// lines (ids, dates, amounts, references) and statement balances, compared as the neutral
// document of hosts/books-format.md.

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';

import { Books, loadProvider, syncAccount } from '../src/index.mjs';
import { autoConsent, COMPONENT, ensureBuilt, ROOT, SANDBOX_ORIGINS, sandboxConfig, startSandbox } from './support.mjs';
import { rustBooks, rustErp } from './rust-books.mjs';

const SEED = 5;
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let sandbox;
let dir;

before(async () => {
  sandbox = await startSandbox({ seed: SEED, transactions: 400, erp: ensureBuilt() });
  dir = mkdtempSync(join(tmpdir(), 'node-equal-books-'));
});
after(() => {
  sandbox?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it(`the Node host and the Rust ERP keep the same books for seed ${SEED}`, async () => {
  const provider = await loadProvider(COMPONENT, {
    connection: 'equal-books',
    config: sandboxConfig(sandbox),
    allowedOrigins: SANDBOX_ORIGINS,
    storagePath: join(dir, 'node-plugin.sqlite'),
    logger: quiet,
  });
  const institution = provider.listInstitutions({})[0];
  const start = provider.beginConnect(institution.id, 'http://127.0.0.1:9/callback');
  const connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
  const books = new Books();
  for (const account of connection.accounts) syncAccount(provider, account.id, books);
  provider.close();
  const node = books.dump(connection.accounts);

  const run = rustErp(ensureBuilt(), sandbox, join(dir, 'erp.sqlite'));
  run('connect', '--institution', institution.id, '--auto-consent');
  run('sync');
  const rust = rustBooks(run);

  // Kept for a look when they differ (and for the other hosts' comparisons).
  mkdirSync(join(ROOT, 'target/tmp'), { recursive: true });
  writeFileSync(join(ROOT, 'target/tmp/books-node.json'), JSON.stringify(node, null, 1));
  writeFileSync(join(ROOT, 'target/tmp/books-rust.json'), JSON.stringify(rust, null, 1));

  assert.ok(node.accounts.length >= 2, 'several accounts');
  assert.ok(node.accounts.every((a) => a.lines.length > 0 && a.statements.length > 0), 'every account has lines and statements');
  assert.equal(node.accounts.reduce((n, a) => n + a.lines.length, 0), rust.accounts.reduce((n, a) => n + a.lines.length, 0));
  assert.deepEqual(node, rust);
});
