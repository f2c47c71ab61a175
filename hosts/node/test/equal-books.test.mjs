// Equal books: for one sandbox seed, the Node host and the Rust ERP hold the same statement
// lines (ids, dates, amounts, references) and statement balances, compared as the neutral
// document of hosts/books-format.md. The seed and the sync (first institution, every account,
// customer IP given) are those of the Python host's test, so with BOOKS_DIR set for both suites
// (.ci/run does) this test also compares the Node host's books with the Python host's.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';

import { Books, loadProvider, syncAccount } from '../src/index.mjs';
import { autoConsent, COMPONENT, ensureBuilt, PONTO_GRANTS, sandboxConfig, startSandbox } from './support.mjs';
import { rustBooks, rustConnect, rustErp } from './rust-books.mjs';

const SEED = 7; // hosts/python/tests/conftest.py
const CUSTOMER_IP = '127.0.0.1';
const BOOKS_DIR = process.env.BOOKS_DIR;
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let sandbox;
let dir;
let node;

before(async () => {
  sandbox = await startSandbox({ seed: SEED });
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
    grantedOrigins: PONTO_GRANTS,
    storagePath: join(dir, 'node-plugin.sqlite'),
    logger: quiet,
  });
  const institution = provider.listInstitutions({})[0];
  const start = provider.beginConnect(institution.id, 'http://127.0.0.1:9/callback');
  const connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
  const books = new Books();
  for (const account of connection.accounts) syncAccount(provider, account.id, books, { customerIp: CUSTOMER_IP });
  provider.close();
  node = books.dump(connection.accounts);

  const run = rustErp(ensureBuilt(), sandbox, join(dir, 'erp.sqlite'));
  await rustConnect(run, institution.id);
  run('sync', '--customer-ip', CUSTOMER_IP);
  const rust = rustBooks(run);

  if (BOOKS_DIR) {
    mkdirSync(BOOKS_DIR, { recursive: true });
    writeFileSync(join(BOOKS_DIR, 'node.json'), JSON.stringify(node, null, 1));
    writeFileSync(join(BOOKS_DIR, 'rust-from-node-test.json'), JSON.stringify(rust, null, 1));
  }
  assert.ok(node.accounts.length >= 2, 'several accounts');
  assert.ok(node.accounts.every((a) => a.lines.length > 0 && a.statements.length > 0), 'every account has lines and statements');
  assert.ok(node.accounts.reduce((n, a) => n + a.lines.length, 0) > 100);
  // Account by account, so a difference is shown where it is.
  assert.deepEqual(node.accounts.map((a) => a.account_id), rust.accounts.map((a) => a.account_id));
  for (const [i, account] of node.accounts.entries()) {
    assert.deepEqual(account.statements, rust.accounts[i].statements);
    assert.deepEqual(account.lines, rust.accounts[i].lines);
  }
  assert.deepEqual(node, rust);
});

it(`the Node host and the Python host keep the same books for seed ${SEED} (BOOKS_DIR)`, (t) => {
  assert.ok(node, 'the Node host synced');
  const python = BOOKS_DIR && join(BOOKS_DIR, 'python.json');
  if (!python || !existsSync(python)) {
    t.skip('no BOOKS_DIR/python.json: run the Python suite first with BOOKS_DIR set (.ci/run does)');
    return;
  }
  assert.deepEqual(node, JSON.parse(readFileSync(python, 'utf8')));
});
