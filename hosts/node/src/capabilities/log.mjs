// `interface log`: the plugin's diagnostics into the host's logger, tagged with the plugin and
// the connection, cut at 2048 bytes and throttled (a token bucket) so that a plugin in a loop
// cannot fill a disk; as host-harness/src/capabilities/log.rs. The plugin promises never to log
// a secret; the host itself never logs headers, bodies or query values (see http.mjs). Control
// characters are shown as escapes, so a line cannot forge another or repaint a terminal.

import { printable } from '../printable.mjs';

export const MAX_LINE_BYTES = 2048;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** A logger writing info and above to stderr, one line each; any object with these five methods
 * `(fields, message)` will do (pino's fit). */
export const consoleLogger = Object.fromEntries(
  LEVELS.map((level, i) => [
    level,
    i < 2
      ? () => {}
      : (fields, message) => process.stderr.write(`${level.toUpperCase()} ${fields.target} ${fields.connection}: ${message}\n`),
  ]),
);

function truncate(s, max) {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length <= max) return s;
  // Cut at a character boundary; a partial UTF-8 sequence at the end is dropped.
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, max)).replace(/\uFFFD$/, '');
}

export class LogCapability {
  constructor({ plugin, connection, logger = consoleLogger, burst = 200, perSecond = 20 }) {
    Object.assign(this, { plugin, connection, logger, burst, perSecond });
    this.tokens = burst;
    this.lastRefill = performance.now();
    this.unreported = 0;
    this.written = 0;
    this.dropped = 0;
  }

  #takeToken() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.perSecond);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  #emit(level, message) {
    this.logger[level]({ target: 'plugin', plugin: this.plugin, connection: this.connection }, message);
  }

  /** The import: `write(level, message)`. */
  write(level, message) {
    if (!this.#takeToken()) {
      this.dropped += 1;
      this.unreported += 1;
      return;
    }
    if (this.unreported > 0) {
      this.#emit('warn', `log throttled: ${this.unreported} lines dropped`);
      this.unreported = 0;
    }
    this.written += 1;
    this.#emit(LEVELS.includes(level) ? level : 'info', printable(truncate(message, MAX_LINE_BYTES)));
  }
}
