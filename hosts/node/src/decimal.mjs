// Exact decimal amounts (`"-1245.80"`) as scaled BigInts: money is never a float.

const SCALE = 12;

/** `"-12.5"` → -12500000000000n (12 decimal places); throws on anything else than a plain decimal. */
export function parseDecimal(text) {
  const m = /^([+-]?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m || (m[3] ?? '').length > SCALE) throw new RangeError(`\`${text}\` is not a decimal amount`);
  const units = BigInt(m[2] + (m[3] ?? '').padEnd(SCALE, '0'));
  return m[1] === '-' ? -units : units;
}

/** Digits after the decimal point of a currency's minor unit (ISO 4217), as the Rust ERP's
 * `money::minor_digits`. */
export function minorDigits(currency) {
  if (['BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'].includes(currency)) return 0;
  if (['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'].includes(currency)) return 3;
  if (['CLF', 'UYW'].includes(currency)) return 4;
  return 2;
}

/**
 * An amount as hosts/books-format.md writes it: the exact decimal padded with zeros to the
 * currency's minor unit, never rounded (`-1245.8` EUR → `-1245.80`, `3.14159` stays), no
 * leading zeros, no negative zero. Text that is not a decimal is kept as is.
 */
export function canonicalAmount(text, currency) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return text;
  const int = m[2].replace(/^0+(?=\d)/, '');
  const frac = (m[3] ?? '').padEnd(minorDigits(currency), '0');
  const zero = /^0*$/.test(int + frac);
  return `${m[1] === '-' && !zero ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}
