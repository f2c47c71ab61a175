// The Rust ERP's books for a sandbox, through its CLI: `erp plugin install` of the packaged
// provider, `erp connect begin` / the consent page filled / `erp connect finish`, `erp sync`,
// then `erp accounts --json` and `erp statements --lines --json` turned into
// hosts/books-format.md's document.

import { spawnSync } from 'node:child_process';
import { canonicalAmount } from '../src/decimal.mjs';
import { PACKAGED, autoConsent } from './support.mjs';

const byString = (f) => (a, b) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);

/** Runs the ERP against `sandbox` in the database `db`; `run(...args)` returns stdout. */
export function rustErp(erp, sandbox, db) {
  const env = {
    ...process.env,
    ERP_DB: db,
    PONTO_API_URL: sandbox.apiUrl,
    PONTO_AUTH_URL: sandbox.authUrl,
    PONTO_CLIENT_ID: 'sandbox-client-id',
    PONTO_CLIENT_SECRET: 'sandbox-client-secret',
  };
  return (...args) => {
    const r = spawnSync(erp, args, { env, encoding: 'utf8', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`erp ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
}

/** Installs the packaged provider into the ERP's database and links `institutionId` through the
 * headless two-step connect, the consent page filled as a person would. */
export async function rustConnect(run, institutionId) {
  run('plugin', 'install', PACKAGED, '--allow-unsigned', '--yes');
  const url = run('connect', 'begin', '--institution', institutionId, '--redirect-uri', 'http://127.0.0.1:9/callback').trim();
  run('connect', 'finish', '--callback-url', await autoConsent(url));
}

/** The document of everything in the ERP's database. */
export function rustBooks(run) {
  const accounts = JSON.parse(run('accounts', '--json')).sort(byString((a) => a.provider_account_id));
  return {
    format: 'erp-bank-sync-books/1',
    accounts: accounts.map((a) => {
      const statements = JSON.parse(run('statements', '--journal', String(a.journal_id), '--lines', '--json'));
      return {
        account_id: a.provider_account_id,
        reference: a.reference,
        currency: a.currency,
        statements: statements.sort(byString((s) => s.key)).map((s) => ({
          key: s.key,
          name: s.name,
          date_from: s.date_from,
          date_to: s.date_to,
          balance_start: canonicalAmount(s.balance_start, a.currency),
          balance_end: canonicalAmount(s.balance_end, a.currency),
        })),
        lines: statements
          .flatMap((s) => s.lines)
          .sort((x, y) => byString((l) => l.booking_date)(x, y) || byString((l) => l.transaction_id)(x, y))
          .map((l) => ({
            transaction_id: l.transaction_id,
            statement_key: l.statement_key,
            booking_date: l.booking_date,
            value_date: l.value_date,
            amount: canonicalAmount(l.amount, l.currency),
            currency: l.currency,
            payment_reference: l.payment_reference,
            structured_reference: l.structured_reference,
            partner_name: l.partner_name,
            partner_account: l.partner_account,
            end_to_end_id: l.end_to_end_id,
          })),
      };
    }),
  };
}
