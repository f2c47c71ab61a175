// The plugin manifest, `provider.toml` beside the `.wasm` (host-harness/src/runtime/manifest.rs):
// who the plugin is (its id is also its storage namespace), the contract version it was built
// for and the origins it wants to reach. The operator's grants are checked against it before
// anything runs, and its origins are the plugin's allowlist.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'smol-toml';

import { parseOrigin } from './capabilities/http.mjs';

export const FILE_NAME = 'provider.toml';

/**
 * Reads and checks the manifest beside `wasmPath`. `fail(path, problem)` builds the error thrown.
 * @returns {{ path: string, id: string, apiVersion: string, origins: object[] }}
 */
export function readManifest(wasmPath, { apiVersionPrefix, apiVersion }, fail) {
  const path = join(dirname(wasmPath), FILE_NAME);
  let doc;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw fail(path, e.code === 'ENOENT' ? 'cannot read the plugin manifest: the file does not exist' : `the plugin manifest does not parse: ${String(e.message).split('\n')[0]}`);
  }
  const text = (key) => (typeof doc[key] === 'string' && doc[key] !== '' ? doc[key] : null);
  for (const key of ['id', 'name', 'version', 'api-version']) {
    if (text(key) === null) throw fail(path, `\`${key}\` is missing or not a non-empty string`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(doc.id)) throw fail(path, `id \`${doc.id}\` must be non-empty letters, digits, - or _`);
  if (!doc['api-version'].startsWith(apiVersionPrefix)) {
    throw fail(
      path,
      `api-version ${doc['api-version']} is not supported by this host (it loads erp:bank-sync@${apiVersion} only): rebuild the plugin against ${apiVersion}`,
    );
  }
  const http = doc.capabilities?.http ?? [];
  if (!Array.isArray(http) || http.some((o) => typeof o !== 'string')) throw fail(path, '`capabilities.http` must be a list of origins');
  const origins = http.map((o) => {
    try {
      return parseOrigin(o);
    } catch (e) {
      throw fail(path, e.message);
    }
  });
  return { path, id: doc.id, apiVersion: doc['api-version'], origins, requested: http };
}

/** Whether two parsed origins are the same grant. */
export const sameOrigin = (a, b) => a.scheme === b.scheme && a.host === b.host && a.port === b.port;
