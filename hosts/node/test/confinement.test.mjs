// What the host refuses and contains: a component importing a filesystem interface is refused
// before it runs, naming the interface; a plugin that traps gets a fresh instance; a plugin
// reaching off its allowlist or flooding the log is held to the rules (the hostile test guest,
// guests/hostile).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { LoadError, loadProvider, PluginCrashed, ProviderError } from '../src/index.mjs';
import { buildComponent, FS_INTERFACE } from './fs-component.mjs';
import { ensureBuilt, ROOT } from './support.mjs';

const HOSTILE = join(ROOT, 'target/wasm/wasm32-wasip2/release/hostile_guest.wasm');
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

describe('a component importing a filesystem interface', () => {
  let dir;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'node-host-fs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused at load, in one line naming the interface', async () => {
    const path = await buildComponent(dir, { withFilesystem: true });
    await assert.rejects(loadProvider(path, { connection: 'c' }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.equal(e.message, `${path}: the plugin imports \`${FS_INTERFACE}\`, which this host does not grant`);
      return true;
    });
  });

  it('while the same component without it loads (the refusal is about the import)', async () => {
    const path = await buildComponent(dir, { withFilesystem: false });
    const provider = await loadProvider(path, { connection: 'c' });
    provider.close();
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
