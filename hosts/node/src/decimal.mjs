// Exact decimal amounts (`"-1245.80"`) as scaled BigInts: money is never a float.

const SCALE = 12;

/** `"-12.5"` → -12500000000000n (12 decimal places); throws on anything else than a plain decimal. */
export function parseDecimal(text) {
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m || (m[3] ?? '').length > SCALE) throw new RangeError(`\`${text}\` is not a decimal amount`);
  const units = BigInt(m[2] + (m[3] ?? '').padEnd(SCALE, '0'));
  return m[1] === '-' ? -units : units;
}

/** The canonical text of a scaled amount: no trailing zeros beyond the point, no `-0`. */
export function formatDecimal(units) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(SCALE + 1, '0');
  const int = digits.slice(0, -SCALE);
  const frac = digits.slice(-SCALE).replace(/0+$/, '');
  return `${negative ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}
