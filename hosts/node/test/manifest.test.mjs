// The manifest a packaged provider carries inside it (erp:bank-sync/manifest): the host reads it
// from the component itself, so a packaged provider needs no file beside it.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { LoadError, loadProvider } from '../src/index.mjs';
import { embeddedManifest } from '../src/manifest.mjs';
import { BARE, ensureBuilt, PACKAGED, PONTO_GRANTS } from './support.mjs';

describe('the manifest inside a packaged provider', () => {
  let dir;
  before(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'erp-node-manifest-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is read from the component: a packaged provider alone in a folder loads', async () => {
    const alone = join(dir, 'provider.wasm');
    copyFileSync(PACKAGED, alone);
    const provider = await loadProvider(alone, { connection: 'c', grantedOrigins: PONTO_GRANTS, storagePath: join(dir, 'kv.sqlite') });
    assert.equal(provider.info().id, 'ponto');
    provider.close();
  });

  it('is absent from a bare component, whose provider.toml beside it is read instead', () => {
    assert.equal(embeddedManifest(readFileSync(BARE)), null);
    assert.equal(embeddedManifest(readFileSync(PACKAGED))['api-version'], '0.2.0');
  });

  it('asks for origins that must be granted', async () => {
    await assert.rejects(loadProvider(PACKAGED, { connection: 'c', grantedOrigins: ['http://127.0.0.1:*'] }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.match(e.message, /has not granted/);
      return true;
    });
  });

  it('of a truncated file is a one-line refusal', async () => {
    const cut = join(dir, 'cut.wasm');
    writeFileSync(cut, readFileSync(PACKAGED).subarray(0, 5000));
    await assert.rejects(loadProvider(cut, { connection: 'c' }), (e) => {
      assert.ok(e instanceof LoadError);
      assert.match(e.message, /cannot read the plugin's manifest/);
      return true;
    });
  });
});
