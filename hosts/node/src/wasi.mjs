// The WASI p2 interfaces this host links, and nothing else: what Rust's std imports on
// wasm32-wasip2 (cli, io, clocks, random), made inert where they could leak or act. The shim's
// defaults are not safe for a plugin: its `environment` hands over the whole process
// environment (PONTO_CLIENT_SECRET included) and its `exit` ends the host process. Filesystem,
// sockets and wasi:http are never linked; a component importing them is refused at load
// (component.mjs).

import * as cli from '@bytecodealliance/preview2-shim/cli';
import * as clocks from '@bytecodealliance/preview2-shim/clocks';
import * as io from '@bytecodealliance/preview2-shim/io';
import * as random from '@bytecodealliance/preview2-shim/random';

/** Interface prefixes a provider may import besides the contract's (as the Rust host). */
export const GRANTED_WASI = ['wasi:cli/', 'wasi:io/', 'wasi:clocks/', 'wasi:random/'];

const packages = { cli, clocks, io, random };
const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** Thrown by an import the plugin may not use: it ends the call like a trap. */
class Refused extends Error {}

const overrides = {
  // No environment, no arguments, no working directory.
  'wasi:cli/environment': { getEnvironment: () => [], getArguments: () => [], initialCwd: () => undefined },
  'wasi:cli/exit': {
    exit() {
      throw new Refused('the plugin called exit; the host process keeps running');
    },
    exitWithCode() {
      throw new Refused('the plugin called exit; the host process keeps running');
    },
  },
  'wasi:cli/stdin': {
    getStdin() {
      throw new Refused('the plugin asked for stdin, which this host does not give');
    },
  },
};

/**
 * The implementation of one granted WASI interface, by its unversioned name
 * (`wasi:clocks/wall-clock`), or undefined when this host does not link it.
 */
export function wasiInterface(name) {
  if (!GRANTED_WASI.some((p) => name.startsWith(p))) return undefined;
  if (overrides[name]) return overrides[name];
  const [pkg, iface] = name.slice('wasi:'.length).split('/');
  return packages[pkg]?.[camel(iface)];
}
