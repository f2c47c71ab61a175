// Loading a provider component: read it, check what it imports and exports BEFORE any of its
// code runs (refusing, in one line naming the interface, a component that imports more than this
// host grants), then let jco transpile it to JS + core wasm (cached by content hash) and compile
// the core modules once, so a fresh instance after a trap costs an instantiation, not a compile.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, access } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { componentWit, transpile } from '@bytecodealliance/jco';

import { GRANTED_WASI } from './wasi.mjs';
import { readManifest, sameOrigin } from './manifest.mjs';
import { parseOrigin } from './capabilities/http.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const JCO_VERSION = JSON.parse(readFileSync(join(HERE, '../node_modules/@bytecodealliance/jco/package.json'), 'utf8')).version;
export const DEFAULT_CACHE_DIR = join(HERE, '../.cache/jco');

/** The contract version this host loads (its patch versions too). A component built for another
 * one (0.1.0) is refused in one line naming both, as the Rust host does: 0.1.0 never left this
 * repository, so a rebuild is the whole migration. */
export const CONTRACT = { package: 'erp:bank-sync', version: '0.2', full: '0.2.0' };
const CONTRACT_IMPORTS = ['types', 'http', 'storage', 'log', 'config'];
const PROVIDER_EXPORT = `${CONTRACT.package}/provider@${CONTRACT.version}.`;

/** Why a component could not be loaded; the message is one line naming the file and the problem. */
export class LoadError extends Error {
  constructor(path, problem, details = {}) {
    super(`${path}: ${problem}`);
    this.name = 'LoadError';
    Object.assign(this, details);
  }
}

/** The component's imports and exports, versioned (`wasi:cli/stdout@0.2.12`), from its WIT. */
export async function worldOf(path, bytes) {
  let wit;
  try {
    wit = await componentWit(bytes);
  } catch (e) {
    throw new LoadError(path, `not a WebAssembly component (invalid: ${String(e?.message ?? e).split('\n')[0]})`);
  }
  // The world is the last one printed; inline interface bodies (`import x: interface { … }`) are
  // named by their key, which is refused below like any other unknown import.
  const world = wit.slice(wit.lastIndexOf('world '));
  const names = (kind) => [...world.matchAll(new RegExp(`^\\s*${kind}\\s+([^;\\s{]+)`, 'gm'))].map((m) => m[1].replace(/:$/, ''));
  return { imports: names('import'), exports: names('export') };
}

/** The first import this host does not grant, or undefined. */
export function firstUngranted(imports) {
  const granted = (name) =>
    CONTRACT_IMPORTS.some((i) => name.startsWith(`${CONTRACT.package}/${i}@${CONTRACT.version}.`)) ||
    GRANTED_WASI.some((p) => name.startsWith(p));
  return imports.find((name) => !granted(name));
}

/** The Rust host's default memory cap of one instance. */
export const DEFAULT_MAX_MEMORY_BYTES = 256 * 1024 * 1024;

/**
 * Caps every wasm linear memory of this process at `bytes`: a plugin that asks for more gets a
 * failed `memory.grow`, so its allocator aborts (a trap, and a fresh instance next call) instead of
 * eating the host's RAM. V8 offers the cap only process-wide; the lowest cap asked for wins.
 */
let memoryCap = Infinity;
export function capMemory(bytes) {
  if (bytes >= memoryCap) return;
  memoryCap = bytes;
  v8.setFlagsFromString(`--wasm-max-mem-pages=${Math.max(1, Math.floor(bytes / 65536))}`);
}

/**
 * Reads and checks a component and its manifest against the operator's `grantedOrigins`, then
 * transpiles it; returns the manifest and what instantiates the component.
 */
export async function loadComponent(path, { grantedOrigins = [], cacheDir = DEFAULT_CACHE_DIR, maxMemoryBytes = DEFAULT_MAX_MEMORY_BYTES } = {}) {
  capMemory(maxMemoryBytes);
  const fail = (where, problem) => new LoadError(where, problem);
  const manifest = readManifest(path, { apiVersionPrefix: `${CONTRACT.version}.`, apiVersion: CONTRACT.full }, fail);
  const granted = grantedOrigins.map((o) => (typeof o === 'string' ? parseOrigin(o) : o));
  for (const [i, origin] of manifest.origins.entries()) {
    if (!granted.some((g) => sameOrigin(g, origin))) {
      throw new LoadError(manifest.path, `the manifest asks for ${manifest.requested[i]}, which the operator has not granted; grant it or remove it`);
    }
  }
  let bytes;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new LoadError(path, `cannot read the plugin: ${e.message}`);
  }
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x0061736d) {
    throw new LoadError(path, `not a WebAssembly component (${bytes.length === 0 ? 'the file is empty' : 'no wasm header'})`);
  }
  if (bytes.readUInt32BE(4) !== 0x0d000100) {
    throw new LoadError(path, 'not a WebAssembly component (it is a core module or an unsupported version; build it for wasm32-wasip2)');
  }
  const { imports, exports } = await worldOf(path, bytes);
  const foreign = [...imports, ...exports]
    .filter((n) => n.startsWith(`${CONTRACT.package}/`))
    .map((n) => n.split('@')[1] ?? '')
    .find((v) => !v.startsWith(`${CONTRACT.version}.`));
  if (foreign !== undefined) {
    throw new LoadError(
      path,
      `the plugin was built for ${CONTRACT.package}@${foreign}; this host loads ${CONTRACT.package}@${CONTRACT.full} only: rebuild the plugin against ${CONTRACT.full}`,
      { apiVersion: foreign },
    );
  }
  const ungranted = firstUngranted(imports);
  if (ungranted) {
    throw new LoadError(path, `the plugin imports \`${ungranted}\`, which this host does not grant`, { import: ungranted });
  }
  const providerExport = exports.find((e) => e.startsWith(PROVIDER_EXPORT));
  if (!providerExport) {
    const other = exports.find((e) => e.startsWith(`${CONTRACT.package}/provider@`));
    throw new LoadError(
      path,
      other
        ? `the plugin exports \`${other}\`, this host speaks ${CONTRACT.package}@${CONTRACT.version}.x`
        : `the plugin does not export \`${PROVIDER_EXPORT}x\``,
    );
  }

  const dir = join(cacheDir, `${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}-jco${JCO_VERSION}`);
  const entry = join(dir, 'component.js');
  if (!(await exists(entry))) {
    const { files } = await transpile(bytes, { name: 'component', instantiation: 'sync', quiet: true, noTypescript: true });
    // Written aside then renamed, so a concurrent loader never imports a half-written directory.
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(tmp, name)), { recursive: true });
      await writeFile(join(tmp, name), content);
    }
    await rename(tmp, dir).catch(async (e) => {
      await rm(tmp, { recursive: true, force: true });
      if (!(await exists(entry))) throw e;
    });
  }
  const { instantiate } = await import(pathToFileURL(entry).href);
  const modules = new Map();
  const getCoreModule = (name) => {
    if (!modules.has(name)) modules.set(name, new WebAssembly.Module(readFileSync(join(dir, name))));
    return modules.get(name);
  };
  return { path, manifest, imports, exports, providerExport, instantiate: (importObject) => instantiate(getCoreModule, importObject) };
}

async function exists(p) {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
