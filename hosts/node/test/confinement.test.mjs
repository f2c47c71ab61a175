// What the host refuses and contains (the repository's test guests, built with `erp`): a
// component importing a filesystem interface (guests/files), built for the previous contract
// (guests/v010) or asking for an origin not granted is refused before it runs, in one line; a
// plugin that traps gets a fresh instance; one reaching off its allowlist or flooding the log is
// held to the rules (guests/hostile).

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { LoadError, loadProvider, PluginCrashed, PluginTimedOut, ProviderError } from '../src/index.mjs';
import { ensureBuilt, guest } from './support.mjs';

const HOSTILE = guest('hostile');
const FILES = guest('files');
const V010 = guest('v010');

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
    // Its manifest says 0.1.0: refused by the manifest check.
    await assert.rejects(loadProvider(V010, { connection: 'c' }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.equal(
        e.message,
        `${join(dirname(V010), 'provider.toml')}: api-version 0.1.0 is not supported by this host (it loads erp:bank-sync@0.2.0 only): rebuild the plugin against 0.2.0`,
      );
      return true;
    });
    // A manifest claiming 0.2.0 does not hide what the component was built for.
    const dir = mkdtempSync(join(tmpdir(), 'node-host-v010-'));
    try {
      const wasm = join(dir, 'v010_guest.wasm');
      copyFileSync(V010, wasm);
      writeFileSync(join(dir, 'provider.toml'), 'id = "v010"\nname = "V"\nversion = "1"\napi-version = "0.2.0"\n');
      await assert.rejects(loadProvider(wasm, { connection: 'c' }), (e) => {
        assert.ok(e instanceof LoadError);
        assert.equal(e.message, `${wasm}: the plugin was built for erp:bank-sync@0.1.0; this host loads erp:bank-sync@0.2.0 only: rebuild the plugin against 0.2.0`);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('one whose manifest asks for an origin the operator has not granted, naming it', async () => {
    // guests/hostile asks for http://127.0.0.1:*; this operator grants only the live API.
    await assert.rejects(loadProvider(HOSTILE, { connection: 'c', grantedOrigins: ['https://api.ibanity.com'] }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.equal(
        e.message,
        `${join(dirname(HOSTILE), 'provider.toml')}: the manifest asks for http://127.0.0.1:*, which the operator has not granted; grant it or remove it`,
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
    provider = await loadProvider(HOSTILE, { connection: 'c', grantedOrigins: ['http://127.0.0.1:*'], logger });
  });
  after(() => provider?.close());

  it('a trap (memory past the cap) is a typed crash, and the next call runs on a fresh instance', () => {
    assert.throws(
      () => provider.listInstitutions({ nameContains: 'memory' }),
      (e) => e instanceof PluginCrashed && /^the plugin crashed in `listInstitutions`: .*; plugin said: memory allocation of \d+ bytes failed/.test(e.message),
    );
    assert.deepEqual(provider.listInstitutions({ nameContains: 'ok' }), []);
  });

  it('a call running past its deadline (an endless loop) is stopped, and the next call runs on a fresh instance', async () => {
    const hasty = await loadProvider(HOSTILE, { connection: 'c', grantedOrigins: ['http://127.0.0.1:*'], callTimeoutMs: 300 });
    try {
      assert.throws(
        () => hasty.listInstitutions({ nameContains: 'loop' }),
        (e) => e instanceof PluginTimedOut && e.message === 'the plugin ran past its time limit of 300 ms in `listInstitutions` and was stopped; the next call starts a fresh instance',
      );
      assert.deepEqual(hasty.listInstitutions({ nameContains: 'ok' }), []);
    } finally {
      hasty.close();
    }
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
