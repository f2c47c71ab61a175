// The capabilities' rules, without the component: http against a small loopback server run in a
// child process (this thread sleeps while a request is in flight, so it cannot serve), storage
// on SQLite, the log throttle.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';

import { HttpCapability, parseOrigin } from '../src/capabilities/http.mjs';
import { StorageCapability } from '../src/capabilities/storage.mjs';
import { LogCapability, MAX_LINE_BYTES } from '../src/capabilities/log.mjs';

const SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.url === '/redirect') { res.writeHead(302, { location: 'https://example.com/elsewhere' }); return res.end(); }
  if (req.url === '/big') { res.writeHead(200); return res.end(Buffer.alloc(2048, 97)); }
  if (req.url === '/binary') { res.writeHead(200); return res.end(Buffer.from([0x50, 0xff, 0x00, 0xfe])); }
  if (req.url === '/slow') return; // never answers
  const body = [];
  req.on('data', (c) => body.push(c));
  req.on('end', () => { res.writeHead(200, { 'x-echo-method': req.method }); res.end(Buffer.concat(body)); });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const request = (url, extra = {}) => ({ method: 'get', url, headers: [], body: { tag: 'text', val: '' }, timeoutMs: undefined, ...extra });

describe('http', () => {
  let server;
  let base;
  let http;
  before(async () => {
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(String(d).trim())));
    base = `http://127.0.0.1:${port}`;
    http = new HttpCapability(
      { allowed: ['http://127.0.0.1:*'].map(parseOrigin), timeoutMs: 2_000, maxResponseBytes: 1024 },
      { plugin: 'test', connection: 'c', logger: quiet },
    );
  });
  after(() => {
    http?.close();
    server?.kill();
  });

  it('sends to a granted origin and returns status, lower-case headers and body', () => {
    const r = http.send(request(`${base}/echo`, { method: 'post', body: { tag: 'text', val: 'héllo' } }));
    assert.equal(r.tag, 'ok');
    assert.equal(r.val.status, 200);
    assert.deepEqual(r.val.headers.find(([n]) => n === 'x-echo-method'), ['x-echo-method', 'POST']);
    assert.deepEqual(r.val.body, { tag: 'text', val: 'héllo' });
  });

  it('gives a body as text exactly when it is valid UTF-8, else as bytes', () => {
    const sent = http.send(request(`${base}/echo`, { method: 'post', body: { tag: 'binary', val: new Uint8Array([1, 2, 0xff]) } }));
    assert.deepEqual(sent.val.body, { tag: 'binary', val: new Uint8Array([1, 2, 0xff]) });
    assert.deepEqual(http.send(request(`${base}/binary`)).val.body, { tag: 'binary', val: new Uint8Array([0x50, 0xff, 0x00, 0xfe]) });
    assert.deepEqual(http.send(request(`${base}/echo`)).val.body, { tag: 'text', val: '' });
  });

  it('refuses an origin not granted, and plain http off loopback, naming the origin', () => {
    assert.deepEqual(http.send(request('https://api.example.com/x')), {
      tag: 'err',
      val: { tag: 'denied', val: 'https://api.example.com:443 is not granted to plugin `test`' },
    });
    const plain = http.send(request('http://example.com/x'));
    assert.equal(plain.val.tag, 'denied');
    assert.match(plain.val.val, /^http:\/\/example\.com:80 .*only to loopback/);
  });

  it('does not follow a redirect: the 3xx goes back to the plugin', () => {
    const r = http.send(request(`${base}/redirect`));
    assert.equal(r.tag, 'ok');
    assert.equal(r.val.status, 302);
  });

  it('caps the response size', () => {
    assert.deepEqual(http.send(request(`${base}/big`)), { tag: 'err', val: { tag: 'too-large', val: 1024n } });
  });

  it('times out, with the plugin able to ask for less than the host limit', () => {
    assert.deepEqual(http.send(request(`${base}/slow`, { timeoutMs: 50 })), { tag: 'err', val: { tag: 'timeout' } });
  });

  it('refuses host-owned headers, bad header values (without echoing them) and user info', () => {
    assert.equal(http.send(request(`${base}/`, { headers: [['Content-Length', '3']] })).val.tag, 'invalid-request');
    const bad = http.send(request(`${base}/`, { headers: [['authorization', 'Bearer secret\r\nx: y']] }));
    assert.equal(bad.val.tag, 'invalid-request');
    assert.ok(!bad.val.val.includes('secret'));
    assert.equal(http.send(request(`http://u:p@127.0.0.1:1/`)).val.tag, 'invalid-request');
  });

  it('audits each request in one line without header values, body or query values', () => {
    const lines = [];
    const logger = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((l) => [l, (f, m) => lines.push(m)]));
    const audited = new HttpCapability({ allowed: [parseOrigin('http://127.0.0.1:*')], timeoutMs: 2_000, maxResponseBytes: 1024 }, { plugin: 't', connection: 'c', logger });
    try {
      audited.send(request(`${base}/echo?code=s3cret&flag#frag`, { method: 'post', headers: [['authorization', 'Bearer t0ken']], body: { tag: 'text', val: 'b0dy' } }));
    } finally {
      audited.close();
    }
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^POST 127\.0\.0\.1\/echo\?code=_&flag -> 200 \(4 bytes\) in \d+ ms$/);
  });

  it('parses origins as the Rust host does', () => {
    assert.deepEqual(parseOrigin('https://api.ibanity.com'), { scheme: 'https', host: 'api.ibanity.com', port: 443 });
    assert.deepEqual(parseOrigin('http://[::1]:*'), { scheme: 'http', host: '::1', port: null });
    assert.throws(() => parseOrigin('http://api.ibanity.com'), /only to loopback/);
    assert.throws(() => parseOrigin('https://api.ibanity.com:*'), /any-port/);
  });
});

describe('storage', () => {
  const open = (quota) => new StorageCapability(':memory:', { plugin: 'p', connection: 'c', quota });

  it('compare-and-swap replaces only the expected value; none means absent, and deletes', () => {
    const s = open();
    assert.deepEqual(s.compareAndSwap('t', 'x', 'a'), { tag: 'ok', val: false });
    assert.deepEqual(s.compareAndSwap('t', undefined, 'a'), { tag: 'ok', val: true });
    assert.deepEqual(s.compareAndSwap('t', undefined, 'b'), { tag: 'ok', val: false });
    assert.deepEqual(s.compareAndSwap('t', 'a', 'b'), { tag: 'ok', val: true });
    assert.deepEqual(s.get('t'), { tag: 'ok', val: 'b' });
    assert.deepEqual(s.compareAndSwap('t', 'b', undefined), { tag: 'ok', val: true });
    assert.deepEqual(s.get('t'), { tag: 'ok', val: null });
  });

  it('lists keys by literal prefix, sorted, within its own connection only', () => {
    const s = open();
    const other = new StorageCapability(':memory:', { plugin: 'p', connection: 'other' });
    for (const k of ['a/2', 'a/1', 'a%', 'b']) s.set(k, 'v');
    assert.deepEqual(s.listKeys('a/'), { tag: 'ok', val: ['a/1', 'a/2'] });
    assert.deepEqual(s.listKeys('a%'), { tag: 'ok', val: ['a%'] });
    assert.deepEqual(other.listKeys(''), { tag: 'ok', val: [] });
  });

  it('refuses past its quota and keeps what was stored', () => {
    const s = open({ maxKeys: 2, maxValueBytes: 4 });
    assert.deepEqual(s.set('a', '12345'), { tag: 'err', val: { tag: 'quota-exceeded', val: 'a value is limited to 4 bytes' } });
    s.set('a', '1');
    s.set('b', '2');
    assert.deepEqual(s.set('c', '3'), { tag: 'err', val: { tag: 'quota-exceeded', val: 'a connection is limited to 2 keys' } });
    assert.deepEqual(s.set('a', '9'), { tag: 'ok', val: undefined });
    assert.equal(s.compareAndSwap('a', '9', '12345').val.tag, 'quota-exceeded');
    assert.deepEqual(s.get('a'), { tag: 'ok', val: '9' });
  });
});

describe('log', () => {
  it('throttles a flood and cuts long lines', () => {
    const lines = [];
    const logger = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((l) => [l, (f, m) => lines.push(m)]));
    const log = new LogCapability({ plugin: 'p', connection: 'c', logger, burst: 10, perSecond: 0 });
    log.write('info', 'x'.repeat(5000));
    assert.equal(Buffer.byteLength(lines[0]), MAX_LINE_BYTES);
    for (let i = 0; i < 1000; i++) log.write('info', `line ${i}`);
    assert.equal(log.written, 10);
    assert.equal(log.dropped, 991);
  });

  it('shows control characters as escapes, so a line cannot forge another', () => {
    const lines = [];
    const logger = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error'].map((l) => [l, (f, m) => lines.push(m)]));
    new LogCapability({ plugin: 'p', connection: 'c', logger }).write('warn', 'ok\nERROR forged\u001b[2J');
    assert.deepEqual(lines, ['ok\\u{a}ERROR forged\\u{1b}[2J']);
  });
});
