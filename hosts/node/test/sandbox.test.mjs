// The whole flow through the Node host against the sandbox, which the test starts itself:
// institutions → headless connect → sync to done → statements.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';

import { Books, loadProvider, ProviderError, syncAccount } from '../src/index.mjs';
import { parseDecimal } from '../src/decimal.mjs';
import { autoConsent, COMPONENT, PONTO_GRANTS, sandboxConfig, startSandbox } from './support.mjs';

/** A logger that keeps every line, to check what reaches a log. */
function recordingLogger() {
  const lines = [];
  const logger = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((l) => [l, (f, m) => lines.push(`${l} ${JSON.stringify(f)} ${m}`)]));
  return { lines, logger };
}

describe('the Ponto component in the Node host, against the sandbox', () => {
  let sandbox;
  let provider;
  let dir;
  const log = recordingLogger();
  let connection;
  const books = new Books();

  before(async () => {
    sandbox = await startSandbox({ seed: 11, transactions: 300 });
    dir = mkdtempSync(join(tmpdir(), 'node-host-test-'));
    provider = await loadProvider(COMPONENT, {
      connection: 'test-connection',
      config: sandboxConfig(sandbox),
      grantedOrigins: PONTO_GRANTS,
      storagePath: join(dir, 'plugin.sqlite'),
      logger: log.logger,
    });
  });

  after(() => {
    provider?.close();
    sandbox?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says who it is', () => {
    const info = provider.info();
    assert.equal(info.id, 'ponto');
    assert.ok(info.configKeys.includes('client-secret'));
  });

  it('lists institutions as typed camelCase objects', () => {
    const institutions = provider.listInstitutions({});
    assert.ok(institutions.length > 1);
    const first = institutions[0];
    assert.equal(typeof first.timeZone, 'string');
    assert.ok(['stable', 'beta', 'experimental', 'unknown'].includes(first.status));
    assert.deepEqual(provider.listInstitutions({ nameContains: first.name }).map((i) => i.id), [first.id]);
  });

  it('connects headlessly: the consent page filled over HTTP, the callback completed', async () => {
    const institution = provider.listInstitutions({})[0];
    const start = provider.beginConnect(institution.id, 'http://127.0.0.1:9/callback');
    assert.match(start.authorizationUrl, /^http:\/\/127\.0\.0\.1:\d+\//);
    connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
    assert.equal(connection.institution.id, institution.id);
    assert.ok(connection.accounts.length >= 1);
    assert.deepEqual(provider.listAccounts(institution.id).map((a) => a.id).sort(), connection.accounts.map((a) => a.id).sort());
  });

  it('syncs every account to done; each statement adds up to its lines and they chain', () => {
    assert.ok(connection, 'the connect step ran');
    for (const account of connection.accounts) {
      const run = syncAccount(provider, account.id, books, { maxLines: 100 });
      const book = books.accounts.get(account.id);
      assert.ok(run.newLines > 0, `account ${account.reference} got lines`);
      assert.equal(BigInt(book.lines.size), run.transactionsRead);
      assert.ok(book.state, 'a done state is kept for the next sync');
      const statements = [...book.statements.values()].sort((a, b) => a.dateTo.localeCompare(b.dateTo) || a.key.localeCompare(b.key));
      assert.ok(statements.length > 0);
      for (const line of book.lines.values()) assert.ok(book.statements.has(line.statementKey), `line ${line.transactionId} is in a statement`);
      let previous;
      for (const s of statements) {
        let sum = parseDecimal(s.balanceStart);
        for (const line of book.lines.values()) if (line.statementKey === s.key) sum += parseDecimal(line.amount);
        assert.equal(sum, parseDecimal(s.balanceEnd), `statement ${s.key} adds up`);
        if (previous) assert.equal(parseDecimal(s.balanceStart), parseDecimal(previous.balanceEnd), `statement ${s.key} starts where ${previous.key} ends`);
        previous = s;
      }
    }
  });

  it('a second sync adds nothing (no line doubled)', () => {
    assert.ok(connection, 'the connect step ran');
    for (const account of connection.accounts) {
      const before = books.accounts.get(account.id).lines.size;
      assert.equal(syncAccount(provider, account.id, books).newLines, 0);
      assert.equal(books.accounts.get(account.id).lines.size, before);
    }
  });

  it('an unknown account is a typed provider error, not a crash', () => {
    assert.throws(() => provider.sync({ accountId: '00000000-0000-4000-8000-000000000000' }), (e) => e instanceof ProviderError && typeof e.error.tag === 'string');
  });

  it('no token the bank issued reaches the log', () => {
    assert.ok(connection, 'the connect step ran');
    // Where the Ponto provider keeps them (plugin/src/client.rs): the refresh token as is, the
    // access token inside a small JSON object.
    const values = Object.fromEntries(providerStorage(dir).map((r) => [r.key, r.value]));
    const stored = new Set([values['oauth/refresh-token'], JSON.parse(values['oauth/access-token'] ?? '{}').token].filter(Boolean));
    assert.equal(stored.size, 2, 'the plugin stored its two tokens');
    assert.ok(log.lines.some((l) => l.includes('oauth2/token')), 'the token requests were logged');
    for (const token of stored) for (const line of log.lines) assert.ok(!line.includes(token), `a token leaked into: ${line.slice(0, 120)}`);
  });
});

function providerStorage(dir) {
  const db = new Database(join(dir, 'plugin.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT key, value FROM plugin_storage').all();
  } finally {
    db.close();
  }
}
