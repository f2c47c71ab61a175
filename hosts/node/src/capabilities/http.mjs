// `interface http`: outbound HTTP on the plugin's behalf, with the Rust host's rules
// (host-harness/src/capabilities/http.rs): an origin allowlist checked on every request, plain
// http only to loopback, redirects never followed (a 3xx goes back to the plugin, whose next
// request is checked again), a timeout, a response size cap, host-owned framing headers, and one
// audit line per request that never carries a header, a body or a query value.
//
// The bridge: the import is synchronous, Node's HTTP is not. A worker thread performs the request
// while this thread sleeps in `Atomics.wait`; the answer comes back through a MessagePort read
// with `receiveMessageOnPort` (binary bodies are transferred, not copied). Measured with
// `bench.mjs --bridge`: the handoff ~20 µs, a request ~0.2 ms more than plain async node:http; a
// child process per request costs 70 ms or more.

import { Worker, MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { validateHeaderName, validateHeaderValue } from 'node:http';

const METHODS = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE' };
// Headers the host sets itself: a plugin setting them could desynchronise framing or talk to
// another virtual host than the one allowed.
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/** Whether `host` names this machine (plain http is allowed only there). */
export function isLoopbackHost(host) {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((p) => Number(p) <= 255) && m[1] === '127';
}

/**
 * Parses one granted origin: `https://host`, `https://host:8443`, or `http://127.0.0.1:*` (any
 * port, loopback only). Throws an Error naming the origin when it is not acceptable.
 */
export function parseOrigin(text) {
  const m = /^([a-zA-Z]+):\/\/(.+)$/.exec(text);
  if (!m) throw new Error(`\`${text}\` is not an origin like https://host[:port]`);
  const scheme = m[1].toLowerCase();
  const defaultPort = { https: 443, http: 80 }[scheme];
  if (!defaultPort) throw new Error(`\`${text}\`: only http and https origins can be granted`);
  let host = m[2];
  let port = defaultPort;
  const pm = /^(.*):(\*|\d+)$/.exec(host);
  if (pm && (!pm[1].includes(':') || pm[1].endsWith(']'))) {
    host = pm[1];
    port = pm[2] === '*' ? null : Number(pm[2]);
    if (port !== null && (port < 1 || port > 65535)) throw new Error(`\`${text}\`: bad port \`${pm[2]}\``);
  }
  if (host === '' || host.includes('/')) throw new Error(`\`${text}\`: an origin has no path`);
  const loopback = isLoopbackHost(host);
  if (scheme === 'http' && !loopback) throw new Error(`\`${text}\`: plain http is allowed only to loopback addresses`);
  if (port === null && !loopback) throw new Error(`\`${text}\`: any-port origins are allowed only on loopback`);
  return { scheme, host: host.replace(/^\[|\]$/g, '').toLowerCase(), port };
}

/** The URL's path for the audit log: query values (codes, tokens) become `_`. */
function auditPath(url) {
  let out = url.pathname;
  if (url.search.length > 1) {
    out += '?' + url.search.slice(1).split('&').map((p) => (p.includes('=') ? p.split('=')[0] + '=_' : p)).join('&');
  }
  return out;
}

const err = (tag, val) => ({ tag: 'err', val: val === undefined ? { tag } : { tag, val } });

export class HttpCapability {
  /**
   * @param {object} policy `{ allowed: origin[], timeoutMs, maxResponseBytes, loopbackCa? }`
   * @param {{plugin: string, connection: string, logger: object}} who
   */
  constructor(policy, { plugin, connection, logger }) {
    this.policy = policy;
    this.plugin = plugin;
    this.connection = connection;
    this.logger = logger;
    this.worker = null;
  }

  /** Starts the worker on first use (and again after a hung one was stopped). */
  #bridge() {
    if (this.worker) return this.worker;
    const signal = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const thread = new Worker(new URL('./http-worker.mjs', import.meta.url), {
      workerData: { port: port2, signal, userAgent: 'erp-host-node/0.1.0', loopbackCa: this.policy.loopbackCa ?? null },
      transferList: [port2],
    });
    // The worker must not keep the process alive once the host is done with it.
    thread.unref();
    this.worker = { thread, port: port1, flag: new Int32Array(signal) };
    return this.worker;
  }

  /** Check a URL against the policy; returns an error result or null. */
  #check(url) {
    const scheme = url.protocol.slice(0, -1);
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const defaultPort = { https: 443, http: 80 }[scheme];
    const port = url.port === '' ? defaultPort : Number(url.port);
    const origin = `${scheme}://${url.hostname}${port ? `:${port}` : ''}`;
    if (!defaultPort || host === '') return err('denied', `${origin} is not an http(s) origin`);
    if (url.username !== '' || url.password !== '') {
      // Credentials belong in a header, where they are never logged.
      return err('invalid-request', 'URLs with user info (user:password@) are refused; send credentials in a header');
    }
    if (scheme === 'http' && !isLoopbackHost(host)) {
      return err('denied', `${origin} is refused: plain http is allowed only to loopback addresses`);
    }
    const granted = this.policy.allowed.some(
      (o) => o.scheme === scheme && o.host === host && (o.port === null || o.port === port),
    );
    if (!granted) return err('denied', `${origin} is not granted to plugin \`${this.plugin}\``);
    return null;
  }

  #checkHeaders(headers) {
    for (const [name, value] of headers) {
      try {
        validateHeaderName(name);
      } catch {
        return err('invalid-request', `\`${name}\` is not a valid header name`);
      }
      try {
        validateHeaderValue(name, value);
      } catch {
        // The value may be a secret: name the header only.
        return err('invalid-request', `the value of header \`${name}\` has characters not allowed in a header`);
      }
      if (RESERVED_HEADERS.has(name.toLowerCase())) {
        return err('invalid-request', `header \`${name}\` is set by the host; leave it out`);
      }
    }
    return null;
  }

  /** The import: `send(request) -> result<response, http-error>`, as a jco result object. */
  send(request) {
    const started = performance.now();
    let url = null;
    let outcome;
    try {
      url = new URL(request.url);
    } catch (e) {
      outcome = err('invalid-request', `unparsable URL: ${e.message}`);
    }
    outcome ??= this.#check(url) ?? this.#checkHeaders(request.headers) ?? this.#perform(request, url);
    this.#audit(request, url, outcome, performance.now() - started);
    return outcome;
  }

  #perform(request, url) {
    const requested = request.timeoutMs ?? Infinity;
    // A zero budget is read as the smallest one: the request fails fast with `timeout`.
    const timeoutMs = Math.max(1, Math.min(requested, this.policy.timeoutMs));
    const wire = new URL(url);
    wire.hash = ''; // a fragment is never sent
    const bridge = this.#bridge();
    Atomics.store(bridge.flag, 0, 0);
    bridge.port.postMessage({
      method: METHODS[request.method],
      url: wire.href,
      headers: request.headers,
      body: request.body,
      timeoutMs,
      maxBytes: this.policy.maxResponseBytes,
      loopback: isLoopbackHost(url.hostname),
    });
    // The worker enforces the timeout; the margin here only catches a worker that hangs.
    const woke = Atomics.wait(bridge.flag, 0, 0, timeoutMs + 5_000);
    const message = receiveMessageOnPort(bridge.port);
    if (woke === 'timed-out' || message === undefined) {
      bridge.thread.terminate();
      this.worker = null;
      return err('timeout');
    }
    const answer = message.message;
    this.lastSize = answer.size;
    return answer.ok ? { tag: 'ok', val: answer.ok } : { tag: 'err', val: answer.err };
  }

  #audit(request, url, outcome, ms) {
    const method = METHODS[request.method] ?? String(request.method);
    const where = url ? `${url.hostname}${auditPath(url)}` : '-';
    const result = outcome.tag === 'ok' ? `${outcome.val.status} (${this.lastSize} bytes)` : outcome.val.tag;
    this.logger.info(
      { target: 'http', plugin: this.plugin, connection: this.connection },
      `${method} ${where} -> ${result} in ${Math.round(ms)} ms`,
    );
  }

  /** Stops the worker thread. */
  close() {
    this.worker?.thread.terminate();
    this.worker = null;
  }
}
