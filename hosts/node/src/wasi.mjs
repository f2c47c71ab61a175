// The WASI p2 interfaces this host links, and nothing else: what Rust's std imports on
// wasm32-wasip2 (cli, io, clocks, random), made inert where they could leak or act. The shim's
// defaults are not safe for a plugin: its `environment` hands over the whole process
// environment (PONTO_CLIENT_SECRET included), its `exit` ends the host process and its stdout
// and stderr are the host's. Here stdout goes nowhere and stderr is kept (64 KiB) for the
// message of a crash, as the Rust host does. Filesystem, sockets and wasi:http are never
// linked; a component importing them is refused at load (component.mjs).

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

/** Guest stderr kept for a crash message (a panic message); the rest is dropped. */
export const STDERR_CAP = 64 * 1024;

/** An output stream of the shim's class (so jco accepts it) that keeps what is written. */
class CapturedOutput extends io.streams.OutputStream {
  constructor(cap) {
    super();
    this.cap = cap;
    this.chunks = [];
    this.size = 0;
  }
  checkWrite() {
    return 65536n;
  }
  write(bytes) {
    const room = this.cap - this.size;
    if (room > 0) {
      const kept = bytes.slice(0, room);
      this.chunks.push(kept);
      this.size += kept.length;
    }
  }
  blockingWriteAndFlush(bytes) {
    this.write(bytes);
  }
  flush() {}
  blockingFlush() {}
  subscribe() {
    // Always ready to write: a pollable that is ready at once.
    return clocks.monotonicClock.subscribeDuration(0n);
  }
  /** What was written, as text, and forgets it. */
  take() {
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    this.size = 0;
    return text;
  }
}

/**
 * The granted WASI interfaces for one instance, by unversioned name (`wasi:clocks/wall-clock`),
 * for the names in `imports`, and the instance's captured stderr.
 */
export function wasiImports(imports) {
  const stderr = new CapturedOutput(STDERR_CAP);
  const stdout = new CapturedOutput(0);
  const own = {
    ...overrides,
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
  };
  const out = {};
  for (const name of imports) {
    if (!GRANTED_WASI.some((p) => name.startsWith(p))) continue;
    const [pkg, iface] = name.slice('wasi:'.length).split('/');
    out[name] = own[name] ?? packages[pkg]?.[camel(iface)];
  }
  return { imports: out, stderr };
}
