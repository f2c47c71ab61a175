// The thread that performs the component's HTTP requests. The component's `http.send` import is
// synchronous while Node's HTTP is asynchronous: the calling thread posts a request here, then
// sleeps in `Atomics.wait` until this thread has posted the answer and notified it (see http.mjs).
// Policy checks (allowlist, headers) are done by the caller; this thread only sends, and enforces
// the timeout and the size cap while reading.

import http from 'node:http';
import https from 'node:https';
import { workerData } from 'node:worker_threads';

const { port, signal, userAgent, loopbackCa } = workerData;
const flag = new Int32Array(signal);

// Keep-alive agents: one TCP/TLS connection reused across a sync's requests.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 4 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 4 }),
  // Extra trusted roots (test CAs) apply to loopback hosts only, never to a bank.
  'https:loopback': loopbackCa ? new https.Agent({ keepAlive: true, maxSockets: 4, ca: loopbackCa }) : null,
};

port.on('message', async (req) => {
  let answer;
  try {
    answer = await perform(req);
  } catch (e) {
    answer = { err: { tag: 'transport', val: String(e?.message ?? e) } };
  }
  // Post first, then wake the caller: the message is already queued on its port when it wakes.
  const transfer = answer.ok?.body.tag === 'binary' ? [answer.ok.body.val.buffer] : [];
  port.postMessage(answer, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});

function perform({ method, url, headers, body, timeoutMs, maxBytes, loopback }) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? https : http;
    const agent = (loopback && u.protocol === 'https:' && agents['https:loopback']) || agents[u.protocol];
    const outgoing = {};
    for (const [name, value] of headers) {
      const key = name.toLowerCase();
      outgoing[key] = key in outgoing ? [].concat(outgoing[key], value) : value;
    }
    if (!('user-agent' in outgoing)) outgoing['user-agent'] = userAgent;
    let settled = false;
    const done = (answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const req = lib.request(u, { method, headers: outgoing, agent }, (res) => {
      const cap = maxBytes;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > cap) {
        res.destroy();
        return done({ err: { tag: 'too-large', val: BigInt(cap) } });
      }
      const chunks = [];
      let size = 0;
      res.on('data', (chunk) => {
        size += chunk.length;
        if (size > cap) {
          res.destroy();
          done({ err: { tag: 'too-large', val: BigInt(cap) } });
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (e) => done({ err: { tag: 'transport', val: e.message } }));
      res.on('end', () => {
        // A fresh buffer (never Node's shared pool) so a binary body is transferred, not copied.
        const bytes = new Uint8Array(size);
        let at = 0;
        for (const c of chunks) {
          bytes.set(c, at);
          at += c.length;
        }
        const names = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          names.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
        }
        done({ ok: { status: res.statusCode, headers: names, body: asBody(bytes) }, size });
      });
    });
    // One deadline for the whole exchange (connect, send, read), as the Rust host's.
    const timer = setTimeout(() => {
      req.destroy();
      done({ err: { tag: 'timeout' } });
    }, timeoutMs);
    req.on('error', (e) => done({ err: { tag: 'transport', val: e.code ? `${e.code}: ${e.message}` : e.message } }));
    // `body` is the contract's `variant body { text(string), binary(list<u8>) }`.
    if (body.val.length > 0) req.end(body.val);
    else req.end();
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A response body is `text` exactly when its bytes are valid UTF-8 (the empty body too). */
function asBody(bytes) {
  try {
    return { tag: 'text', val: utf8.decode(bytes) };
  } catch {
    return { tag: 'binary', val: bytes };
  }
}
