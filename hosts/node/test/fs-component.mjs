// Builds, with jco's wasm-tools, a provider component around a dummy core module: the
// contract's world (read from wit/), plus `wasi:filesystem/types` when asked. The one with the
// filesystem must be refused before any of its code runs.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { componentEmbed, componentNew } from '@bytecodealliance/jco';

import { ROOT } from './support.mjs';

export const FS_INTERFACE = 'wasi:filesystem/types@0.2.6';

export async function buildComponent(dir, { withFilesystem }) {
  let pkg;
  let body = '';
  for (const f of readdirSync(join(ROOT, 'wit')).filter((f) => f.endsWith('.wit'))) {
    const text = readFileSync(join(ROOT, 'wit', f), 'utf8');
    pkg = /^package\s+([^;]+);/m.exec(text)[1];
    body += text.replace(/^package\s+[^;]+;/m, '') + '\n';
  }
  const source = [
    'package test:fs-provider;',
    `package ${pkg} {\n${body}\n}`,
    `package ${FS_INTERFACE.split('/')[0]}@${FS_INTERFACE.split('@')[1]} {\n  interface types {\n    read-file: func(path: string) -> list<u8>;\n  }\n}`,
    `world fs-provider {\n  include ${pkg.replace('@', '/bank-provider@')};\n${withFilesystem ? `  import ${FS_INTERFACE};\n` : ''}}`,
  ].join('\n');
  const core = await componentEmbed({ dummy: true, witSource: source, world: 'fs-provider' });
  const out = join(dir, withFilesystem ? 'fs_provider.wasm' : 'plain_provider.wasm');
  writeFileSync(out, await componentNew(core));
  return out;
}
