// The plugin manifest: who the plugin is (its id is also its storage namespace), the contract
// version it was built for and the origins it wants to reach. A packaged provider carries it in its
// `erp:bank-sync/manifest` custom section (JSON, format 1: erp-plugins/src/manifest.rs); a bare
// component has the legacy `provider.toml` beside the `.wasm`. The operator's grants are checked
// against it before anything runs, and its origins are the plugin's allowlist.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'smol-toml';

import { parseOrigin } from './capabilities/http.mjs';

export const FILE_NAME = 'provider.toml';
export const SECTION = 'erp:bank-sync/manifest';

/** An unsigned LEB128 at `at` in `bytes`: [value, offset after it]. */
function leb128(bytes, at) {
  let value = 0;
  for (let shift = 0; shift <= 28; shift += 7) {
    if (at >= bytes.length) throw new Error('a section size runs past the end of the file');
    const byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return [value, at];
  }
  throw new Error('a section size is too long');
}

/**
 * The manifest a packaged component carries, in the legacy `provider.toml` shape (`id`, `name`,
 * `api-version`, `capabilities.http`), or null for a bare component. Throws on a malformed file.
 */
export function embeddedManifest(bytes) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error('not a WebAssembly file');
  }
  const found = [];
  for (let at = 8; at < bytes.length; ) {
    const id = bytes[at];
    const [size, start] = leb128(bytes, at + 1);
    const end = start + size;
    if (end > bytes.length) throw new Error('a section runs past the end of the file');
    if (id === 0) {
      const [nameLen, nameAt] = leb128(bytes, start);
      if (Buffer.from(bytes.subarray(nameAt, nameAt + nameLen)).toString('utf8') === SECTION) {
        found.push(bytes.subarray(nameAt + nameLen, end));
      }
    }
    at = end;
  }
  if (found.length === 0) return null;
  if (found.length > 1) throw new Error(`${found.length} \`${SECTION}\` sections; a provider has exactly one`);
  const doc = JSON.parse(Buffer.from(found[0]).toString('utf8'));
  if (doc?.format !== 1) throw new Error('the manifest is not in format 1: upgrade this host');
  for (const key of ['id', 'name', 'contract-version']) {
    if (typeof doc[key] !== 'string' || doc[key] === '') throw new Error(`the manifest's \`${key}\` is missing`);
  }
  return { id: doc.id, name: doc.name, version: 'packaged', 'api-version': doc['contract-version'], capabilities: { http: doc.origins ?? [] } };
}

/**
 * Reads and checks the manifest beside `wasmPath`. `fail(path, problem)` builds the error thrown.
 * @returns {{ path: string, id: string, apiVersion: string, origins: object[] }}
 */
export function readManifest(wasmPath, { apiVersionPrefix, apiVersion }, fail) {
  let path = wasmPath;
  let doc;
  try {
    doc = embeddedManifest(readFileSync(wasmPath));
  } catch (e) {
    throw fail(path, `cannot read the plugin's manifest: ${e.code === 'ENOENT' ? 'the file does not exist' : e.message}`);
  }
  if (doc === null) {
    path = join(dirname(wasmPath), FILE_NAME);
    try {
      doc = parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw fail(path, e.code === 'ENOENT' ? 'cannot read the plugin manifest: the file does not exist' : `the plugin manifest does not parse: ${String(e.message).split('\n')[0]}`);
    }
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
