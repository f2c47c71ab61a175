// Test and bench support: the sandbox (started from the `erp-dev` binary, built if missing), the
// headless consent (the sandbox's consent page filled over HTTP, as `erp-dev consent` does) and
// the paths of the repository's artefacts.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const ERP = join(ROOT, 'target/debug/erp');
/** The development binary (`erp-dev sandbox`); the ERP itself knows no sandbox. */
export const ERP_DEV = join(ROOT, 'target/debug/erp-dev');
/** The packaged provider (manifest and metadata embedded) an operator installs into the ERP. */
export const PACKAGED = join(ROOT, 'target/wasm/packaged/ponto_provider.wasm');
/** What the tests load: the packaged provider, as an operator receives it. */
export const COMPONENT = PACKAGED;
/** The bare release component (a legacy provider.toml beside it). */
export const BARE = join(ROOT, 'target/wasm/wasm32-wasip2/release/ponto_provider.wasm');
/** What the operator grants the Ponto provider: every origin its provider.toml asks for. */
export const PONTO_GRANTS = ['https://api.ibanity.com', 'http://127.0.0.1:*', 'http://localhost:*'];

/** A test guest of guests/, with its manifest beside it: `guest('hostile')`. */
export const guest = (name) => join(ROOT, `target/wasm/wasm32-wasip2/release/${name}-guest/${name}_guest.wasm`);
const GUESTS = ['hostile', 'files', 'v010'].map(guest);

/** Builds the `erp` and `erp-dev` binaries (the components crate's build script builds the
 * component and the test guests) when any of them is missing; returns the `erp` binary. */
export function ensureBuilt({ release = false } = {}) {
  const erp = release ? join(ROOT, 'target/release/erp') : ERP;
  if ([erp, ERP_DEV, BARE, PACKAGED, ...GUESTS].every((p) => existsSync(p))) return erp;
  const args = ['build', '-j2', '--locked', '-p', 'host-harness', '-p', 'erp-devkit', ...(release ? ['--release'] : [])];
  const r = spawnSync('cargo', args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cargo ${args.join(' ')} failed`);
  return erp;
}

/** Starts `erp-dev sandbox` on a free port; resolves to `{ apiUrl, authUrl, stop() }`. */
export function startSandbox({ seed = 7, transactions } = {}) {
  ensureBuilt();
  const args = ['sandbox', '--port', '0', '--seed', String(seed)];
  if (transactions !== undefined) args.push('--transactions', String(transactions));
  const child = spawn(ERP_DEV, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  // Never outlive the test process, even when it ends without stopping the sandbox.
  process.once('exit', () => child.kill());
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) => reject(new Error(`the sandbox exited (${code}) before it listened: ${out}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const api = /API:\s+(\S+)/.exec(out);
      const auth = /consent page:\s+(\S+)/.exec(out);
      if (api && auth) {
        child.removeAllListeners('exit');
        resolve({ apiUrl: api[1], authUrl: auth[1], stop: () => child.kill() });
      }
    });
  });
}

/** The provider settings pointing at a sandbox (its default client credentials). */
export function sandboxConfig(sandbox) {
  return {
    'api-url': sandbox.apiUrl,
    'authorization-url': sandbox.authUrl,
    'client-id': 'sandbox-client-id',
    'client-secret': 'sandbox-client-secret',
    'sync-poll-interval-ms': '200',
  };
}

/** Fills the consent page at `authorizationUrl` ticking every account; returns the callback URL. */
export async function autoConsent(authorizationUrl) {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  if (page.status !== 200) throw new Error(`the consent page answered HTTP ${page.status}`);
  const html = await page.text();
  const attr = (tag, name) => new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag)?.[1];
  const action = attr(/<form\b[^>]*>/i.exec(html)?.[0] ?? '', 'action');
  const form = new URLSearchParams();
  let accounts = 0;
  for (const [tag] of html.matchAll(/<input\b[^>]*>/gi)) {
    const type = (attr(tag, 'type') ?? 'text').toLowerCase();
    const name = attr(tag, 'name');
    if (!name) continue;
    const value = unescapeHtml(attr(tag, 'value') ?? '');
    if (type === 'hidden') form.append(name, value);
    else if (type === 'checkbox' && name === 'account') {
      form.append(name, value);
      accounts += 1;
    }
  }
  if (accounts === 0) throw new Error('the consent page offers no account to tick');
  const target = new URL(action ? unescapeHtml(action) : new URL(authorizationUrl).pathname, authorizationUrl);
  const answer = await fetch(target, { method: 'POST', body: form, redirect: 'manual' });
  const location = answer.headers.get('location');
  if (!location) throw new Error(`the consent page answered HTTP ${answer.status} without a redirect`);
  return new URL(location, authorizationUrl).href;
}

function unescapeHtml(s) {
  return s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]);
}
