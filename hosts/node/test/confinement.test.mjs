// What the host refuses and contains (the repository's test guests, built with `erp`): a
// component importing a filesystem interface (guests/files) or built for the previous contract
// (guests/v010) is refused before it runs, in one line; a plugin that traps gets a fresh
// instance; one reaching off its allowlist or flooding the log is held to the rules
// (guests/hostile).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { LoadError, loadProvider, PluginCrashed, ProviderError } from '../src/index.mjs';
import { ensureBuilt, ROOT } from './support.mjs';

const guest = (name) => join(ROOT, `target/wasm/wasm32-wasip2/release/${name}.wasm`);
const HOSTILE = guest('hostile_guest');
const FILES = guest('files_guest');
const V010 = guest('v010_guest');

describe('components this host refuses before they run', () => {
  before(() => ensureBuilt());

  it('one importing a filesystem interface, in one line naming it', async () => {
    // guests/files reads a file through std::fs, so it imports wasi:filesystem.
    await assert.rejects(loadProvider(FILES, { connection: 'c' }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.match(e.message, /^\S+files_guest\.wasm: the plugin imports `wasi:filesystem\/[a-z-]+@0\.2\.\d+`, which this host does not grant$/);
      return true;
    });
  });

  it('one built for erp:bank-sync@0.1.0, in one line naming both versions', async () => {
    await assert.rejects(loadProvider(V010, { connection: 'c' }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.equal(
        e.message,
        `${V010}: the plugin was built for erp:bank-sync@0.1.0; this host loads erp:bank-sync@0.2.0 only: rebuild the plugin against 0.2.0`,
      );
      return true;
    });
  });
});

describe('the hostile guest', () => {
  let provider;
  let log;
  before(async () => {
    ensureBuilt();
    log = [];
    const logger = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((l) => [l, (f, m) => log.push(m)]));
    provider = await loadProvider(HOSTILE, { connection: 'c', plugin: 'hostile', allowedOrigins: ['http://127.0.0.1:*'], logger });
  });
  after(() => provider?.close());

  it('a trap (memory past the cap) is a typed crash, and the next call runs on a fresh instance', () => {
    assert.throws(() => provider.listInstitutions({ nameContains: 'memory' }), PluginCrashed);
    assert.deepEqual(provider.listInstitutions({ nameContains: 'ok' }), []);
  });

  it('a request off the allowlist is denied to the plugin, naming the origin', () => {
    assert.throws(
      () => provider.listInstitutions({ nameContains: 'off-allowlist' }),
      (e) => e instanceof ProviderError && e.error.tag === 'transport' && e.error.val.includes('https://exfiltrate.example.com:443 is not granted'),
    );
  });

  it('a log flood is throttled', () => {
    provider.listInstitutions({ nameContains: 'log-flood' });
    const { written, dropped } = provider.logCounts();
    assert.ok(written < 1_000, `${written} lines written`);
    assert.equal(written + dropped, 100_000);
    assert.ok(log.some((m) => /^log throttled: \d+ lines dropped$/.test(m)));
  });
});
