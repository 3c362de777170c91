// IPv4 syntax as rbldnsd reads it (ip4parse.c): prefixes "1.2.3" (= 1.2.3.0/24), CIDR "1.2.3.0/24",
// ranges "1.2.3.4-1.2.3.10" and "1.2.3.4-10", A values ":2" (= 127.0.0.2); and the reversed
// query names "4.3.2.1.zone". The parsers work on bytes of the zone file and leave their result
// in one reused scratch object, so that a million-line file costs no object per line.

/** Result of the last successful parse call (valid until the next call). */
export const ip4 = { a: 0, b: 0, bits: 0 };

const D0 = 48;
const D9 = 57;
const DOT = 46;
const DASH = 45;
const SLASH = 47;

/** The network mask of a prefix length, as an unsigned 32-bit number. */
export function ip4mask(bits: number): number {
  return bits <= 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * rbldnsd's ip4prefix: one to four dotted decimal octets, each 0..255 (leading zeros allowed).
 * Sets ip4.a (octets from the top: "10.1" is 10.1.0.0) and ip4.bits (8, 16, 24 or 32).
 * Returns the position after the prefix, or -1.
 */
export function ip4Prefix(buf: Uint8Array, pos: number, end: number): number {
  let a = 0;
  for (let n = 1; n <= 4; n++) {
    if (pos >= end) return -1;
    let c = buf[pos];
    if (c < D0 || c > D9) return -1;
    let o = c - D0;
    pos++;
    while (pos < end && (c = buf[pos]) >= D0 && c <= D9) {
      o = o * 10 + (c - D0);
      if (o > 255) return -1;
      pos++;
    }
    a = a * 256 + o;
    // rbldnsd stops after the fourth octet whatever follows: the caller judges the tail.
    if (n === 4 || pos >= end || buf[pos] !== DOT) {
      ip4.a = a * 2 ** (8 * (4 - n));
      ip4.bits = 8 * n;
      return pos;
    }
    pos++;
  }
  return -1;
}

/** "/bits" after a prefix: one or more digits, at most 32. */
function maskBits(buf: Uint8Array, pos: number, end: number): number {
  if (pos >= end || buf[pos] < D0 || buf[pos] > D9) return -1;
  let bits = 0;
  while (pos < end && buf[pos] >= D0 && buf[pos] <= D9) {
    bits = bits * 10 + (buf[pos] - D0);
    if (bits > 32) return -1;
    pos++;
  }
  ip4.bits = bits;
  return pos;
}

/**
 * rbldnsd's ip4range: a prefix (not a bare number), a CIDR, or a range of two prefixes of the
 * same length, where a one-octet second bound replaces the last octet of the first
 * ("127.16-31" is 127.16.0.0-127.31.255.255). Sets ip4.a, ip4.b (inclusive) and ip4.bits
 * (32 for a range, so that the host-part check passes). Returns the position after, or -1.
 */
export function ip4Range(buf: Uint8Array, pos: number, end: number): number {
  let p = ip4Prefix(buf, pos, end);
  if (p < 0) return -1;
  const a = ip4.a;
  let bits = ip4.bits;
  if (p < end && buf[p] === DASH) {
    p = ip4Prefix(buf, p + 1, end);
    if (p < 0) return -1;
    let b = ip4.a;
    let bbits = ip4.bits;
    if (bbits === 8) {
      b = ((b >>> (bits - 8)) | (a & ip4mask(bits - 8))) >>> 0;
      bbits = bits;
    } else if (bbits !== bits) {
      return -1;
    }
    if (bbits !== 32) b = (b | ~ip4mask(bbits)) >>> 0;
    if (a > b) return -1;
    ip4.a = a;
    ip4.b = b;
    ip4.bits = 32;
    return p;
  }
  if (p < end && buf[p] === SLASH) {
    p = maskBits(buf, p + 1, end);
    if (p < 0) return -1;
    bits = ip4.bits;
  } else if (bits === 8) {
    // A bare "127" is refused: rbldnsd wants "127/8" or "127.0.0.0/8".
    return -1;
  }
  ip4.a = a;
  ip4.b = (a | ~ip4mask(bits)) >>> 0;
  ip4.bits = bits;
  return p;
}

/**
 * rbldnsd's ip4addr, used for A values: like inet_aton, a short form puts its last number in the
 * last octet ("1.2" is 1.0.0.2, "5" is 0.0.0.5). Sets ip4.a and ip4.bits; returns position or -1.
 */
export function ip4Addr(buf: Uint8Array, pos: number, end: number): number {
  const p = ip4Prefix(buf, pos, end);
  if (p < 0) return -1;
  const a = ip4.a;
  switch (ip4.bits) {
    case 8:
      ip4.a = a >>> 24;
      break;
    case 16:
      ip4.a = ((a & 0xff000000) | ((a >>> 16) & 255)) >>> 0;
      break;
    case 24:
      ip4.a = ((a & 0xffff0000) | ((a >>> 8) & 255)) >>> 0;
      break;
  }
  return p;
}

export function formatIp4(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/**
 * rbldnsd's expansion of an inclusive range into entries of its four levels — level 0 holds
 * single addresses (/32), 1 whole /24s, 2 whole /16s, 3 whole /8s — so that a query is at most
 * four binary searches. `add(level, first, count)` receives runs of consecutive blocks of that
 * level (first is the block's address, blocks are 256^level apart).
 */
export function expandIp4Range(a: number, b: number, add: (level: number, first: number, count: number) => void): void {
  for (let level = 0; level < 3; level++) {
    const shift = 8 * level;
    if (a + (255 - (a & 255)) >= b) {
      if (b - a === 255) add(level + 1, a * 2 ** shift, 1);
      else if (b >= a) add(level, a * 2 ** shift, b - a + 1);
      return;
    }
    if (a & 255) {
      add(level, a * 2 ** shift, 256 - (a & 255));
      a = Math.floor(a / 256) + 1;
    } else {
      a = Math.floor(a / 256);
    }
    if ((b & 255) !== 255) {
      add(level, (b - (b & 255)) * 2 ** shift, (b & 255) + 1);
      b = Math.floor(b / 256) - 1;
    } else {
      b = Math.floor(b / 256);
    }
  }
  if (b >= a) add(3, a * 2 ** 24, b - a + 1);
}

/**
 * The address of a reversed query name "4.3.2.1" (relative to the zone), or -1: exactly four
 * labels of one to three digits, each at most 255, as rbldnsd's dntoip4addr ("01" is 1).
 */
export function ip4FromReversed(rel: string): number {
  const n = rel.length;
  if (n < 7 || n > 15) return -1;
  let a = 0;
  let pos = 0;
  for (let label = 0; label < 4; label++) {
    let o = 0;
    let digits = 0;
    while (pos < n) {
      const c = rel.charCodeAt(pos);
      if (c === DOT) break;
      if (c < D0 || c > D9 || ++digits > 3) return -1;
      o = o * 10 + (c - D0);
      pos++;
    }
    if (digits === 0 || o > 255) return -1;
    a += o * 2 ** (8 * label);
    if (label < 3) {
      if (pos >= n) return -1;
      pos++;
    }
  }
  return pos === n ? a : -1;
}
