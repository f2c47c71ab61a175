// The Node host of an erp:bank-sync provider component: the four contract imports with the Rust
// host's rules, the WASI interfaces Rust's std needs (and no more), and a typed wrapper over the
// `provider` export. Types: ../index.d.ts.
//
//   const provider = await loadProvider('ponto_provider.wasm', { connection: 'c1', config, ... });
//   const institutions = provider.listInstitutions({});
//
// Calls are synchronous (the imports are): HTTP blocks this thread while a worker thread
// performs it. One Provider is one connection (its storage scope), like one Store per job in
// the Rust host.

import { loadComponent, LoadError, CONTRACT } from './component.mjs';
import { HttpCapability, parseOrigin } from './capabilities/http.mjs';
import { StorageCapability } from './capabilities/storage.mjs';
import { LogCapability, consoleLogger } from './capabilities/log.mjs';
import { ConfigCapability } from './capabilities/config.mjs';
import { wasiImports } from './wasi.mjs';
import vm from 'node:vm';
import { printable } from './printable.mjs';

export { LoadError, parseOrigin, CONTRACT };

/** The provider answered with a typed `provider-error`; `error` is `{ tag, val }`. */
export class ProviderError extends Error {
  constructor(error) {
    super(printable(`${error.tag}: ${describe(error.val)}`));
    this.name = 'ProviderError';
    this.error = error;
  }
}

/** The plugin trapped (or broke the contract); its instance is gone, the next call gets a fresh one. */
export class PluginCrashed extends Error {
  constructor(call, cause, said = '') {
    const trap = String(cause?.message ?? cause).split('\n')[0];
    const detail = said ? `${trap}; plugin said: ${printable(said.replace(/\s*\n\s*/g, ' | '))}` : trap;
    super(`the plugin crashed in \`${call}\`: ${detail}; the next call starts a fresh instance`, { cause });
    this.name = 'PluginCrashed';
  }
}

/** The plugin ran past its time limit and was stopped; the next call gets a fresh instance. */
export class PluginTimedOut extends Error {
  constructor(call, ms) {
    super(`the plugin ran past its time limit of ${ms} ms in \`${call}\` and was stopped; the next call starts a fresh instance`);
    this.name = 'PluginTimedOut';
  }
}

// Every call into the plugin runs as this script with a `timeout`: Node's watchdog thread then
// stops it, even inside wasm or while waiting for an HTTP answer, which nothing on this thread
// could do. About 0.5 ms per call (a sync batch is one call).
const deadlineContext = vm.createContext({ call: null });
const deadlineScript = new vm.Script('call()');
function withDeadline(f, ms) {
  deadlineContext.call = f;
  try {
    return deadlineScript.runInContext(deadlineContext, { timeout: ms });
  } finally {
    deadlineContext.call = null;
  }
}

function describe(val) {
  if (val === undefined) return '';
  if (typeof val !== 'object') return String(val);
  return val.detail ?? val.message ?? val.advice ?? val.reason ?? JSON.stringify(val, (_, v) => (typeof v === 'bigint' ? String(v) : v));
}

/** Calls `f`; an exception from a host function would poison the instance, so none escapes. */
function guarded(f, onError) {
  return (...args) => {
    try {
      return f(...args);
    } catch (e) {
      return onError(e);
    }
  };
}

/**
 * Loads a provider component for one connection.
 * @param {string} path the .wasm component
 * @param {import('../index.d.ts').HostOptions} options
 * @returns {Promise<Provider>}
 */
export async function loadProvider(path, options) {
  const component = await loadComponent(path, { grantedOrigins: options.grantedOrigins, cacheDir: options.cacheDir, maxMemoryBytes: options.maxMemoryBytes });
  return new Provider(component, options);
}

export class Provider {
  #component;
  #imports;
  #api = null;
  #caps;
  #stderr;
  #callTimeoutMs;

  constructor(component, {
    connection,
    config = {},
    storagePath = ':memory:',
    logger = consoleLogger,
    httpTimeoutMs = 30_000,
    maxResponseBytes = 16 * 1024 * 1024,
    loopbackCa,
    quota,
    callTimeoutMs = 60_000,
  }) {
    if (!connection) throw new TypeError('`connection` is required: it scopes the plugin\'s storage');
    this.#component = component;
    this.#callTimeoutMs = callTimeoutMs;
    // The manifest's id is the storage namespace; its origins (all granted) are the allowlist.
    const plugin = component.manifest.id;
    const who = { plugin, connection, logger };
    const http = new HttpCapability(
      { allowed: component.manifest.origins, timeoutMs: httpTimeoutMs, maxResponseBytes, loopbackCa },
      who,
    );
    const storage = new StorageCapability(storagePath, { plugin, connection, quota });
    const log = new LogCapability(who);
    const cfg = new ConfigCapability(config);
    this.#caps = { http, storage, log, config: cfg };
    const failed = (e) => ({ tag: 'err', val: { tag: 'unavailable', val: `host error: ${e?.message ?? e}` } });
    const ns = CONTRACT.package;
    // jco 1.35's generated .d.ts names imports with their version (`erp:bank-sync/http@0.1.0`),
    // but the generated JS reads them WITHOUT it (`erp:bank-sync/http`), and it also reads an
    // `erp:bank-sync/types` entry although that interface has no functions. This is the one
    // place that knows it.
    this.#imports = {
      [`${ns}/types`]: {},
      [`${ns}/http`]: { send: guarded((r) => http.send(r), (e) => ({ tag: 'err', val: { tag: 'transport', val: `host error: ${e?.message ?? e}` } })) },
      [`${ns}/storage`]: {
        get: guarded((k) => storage.get(k), failed),
        set: guarded((k, v) => storage.set(k, v), failed),
        delete: guarded((k) => storage.delete(k), failed),
        listKeys: guarded((p) => storage.listKeys(p), failed),
        compareAndSwap: guarded((k, e, n) => storage.compareAndSwap(k, e, n), failed),
      },
      [`${ns}/log`]: { write: guarded((l, m) => log.write(l, m), () => undefined) },
      [`${ns}/config`]: { get: guarded((k) => cfg.get(k), () => undefined) },
    };
    const wasi = wasiImports(component.imports.map((name) => name.split('@')[0]));
    Object.assign(this.#imports, wasi.imports);
    this.#stderr = wasi.stderr;
  }

  #call(name, ...args) {
    if (this.#api === null) {
      this.#stderr.take();
      const root = this.#component.instantiate(this.#imports);
      this.#api = root[this.#component.providerExport] ?? root.provider;
    }
    try {
      return withDeadline(() => this.#api[name](...args), this.#callTimeoutMs);
    } catch (e) {
      // jco throws a ComponentError carrying the `err` of a `result` as `payload`.
      if (e !== null && typeof e === 'object' && Object.hasOwn(e, 'payload')) throw new ProviderError(e.payload);
      // Anything else is a trap: the instance may be half-way through a call, never reuse it.
      this.#api = null;
      if (e?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
        // Stopped anywhere: maybe waiting for an HTTP answer (whose late reply must not be read
        // as the next request's) or inside a storage transaction (rolled back here).
        this.#caps.http.close();
        this.#caps.storage.rollbackOpen();
        throw new PluginTimedOut(name, this.#callTimeoutMs);
      }
      throw new PluginCrashed(name, e, this.#stderr.take().trim());
    }
  }

  /** @returns {import('../index.d.ts').ProviderInfo} */
  info() {
    return this.#call('info');
  }
  listInstitutions(filter = {}) {
    return this.#call('listInstitutions', filter);
  }
  beginConnect(institutionId, redirectUri) {
    return this.#call('beginConnect', institutionId, redirectUri);
  }
  completeConnect(callbackUrl) {
    return this.#call('completeConnect', callbackUrl);
  }
  listAccounts(institutionId) {
    return this.#call('listAccounts', institutionId);
  }
  sync(request) {
    return this.#call('sync', { maxLines: 1000, ...request });
  }
  requestReauthorization(accountId, redirectUri) {
    return this.#call('requestReauthorization', accountId, redirectUri);
  }
  disconnect() {
    return this.#call('disconnect');
  }

  /** Lines written and dropped by the log throttle. */
  logCounts() {
    return { written: this.#caps.log.written, dropped: this.#caps.log.dropped };
  }

  /** Stops the HTTP worker and closes the store. */
  close() {
    this.#caps.http.close();
    this.#caps.storage.close();
  }
}

export { Books, syncAccount } from './books.mjs';
