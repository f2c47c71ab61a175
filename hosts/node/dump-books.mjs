// `node hosts/node/dump-books.mjs --api-url URL --auth-url URL [--institution ID]`: connects the
// Node host to a running sandbox (its consent page filled over HTTP), syncs every authorised
// account to done and prints the books as hosts/books-format.md's JSON document, so another
// host's test can compare its own books with the Node host's.

import { parseArgs } from 'node:util';

import { Books, loadProvider, syncAccount } from './src/index.mjs';
import { autoConsent, COMPONENT, PONTO_GRANTS, sandboxConfig } from './test/support.mjs';

const { values: args } = parseArgs({
  options: { 'api-url': { type: 'string' }, 'auth-url': { type: 'string' }, institution: { type: 'string' }, component: { type: 'string' } },
});
if (!args['api-url'] || !args['auth-url']) {
  process.stderr.write('usage: node dump-books.mjs --api-url URL --auth-url URL [--institution ID] [--component PATH]\n');
  process.exit(2);
}
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
const provider = await loadProvider(args.component ?? COMPONENT, {
  connection: 'books-dump',
  config: sandboxConfig({ apiUrl: args['api-url'], authUrl: args['auth-url'] }),
  grantedOrigins: PONTO_GRANTS,
  logger: quiet,
});
try {
  const institution = args.institution ?? provider.listInstitutions({})[0].id;
  const start = provider.beginConnect(institution, 'http://127.0.0.1:9/callback');
  const connection = provider.completeConnect(await autoConsent(start.authorizationUrl));
  const books = new Books();
  for (const account of connection.accounts) syncAccount(provider, account.id, books);
  process.stdout.write(JSON.stringify(books.dump(connection.accounts), null, 1) + '\n');
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 1;
} finally {
  provider.close();
}
