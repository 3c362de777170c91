// IPv6 syntax as rbldnsd reads it (ip6addr.c): groups of up to four hex digits separated by
// colons, with "::" — but a prefix without "::" counts only the groups written ("2001:db8:1:2" is
// a /64, which is how ip6tset wants its entries). Query names are the 32 reversed nibbles of
// ip6.arpa style ("b.a.9.8.…"); the text substituted for "$" in TXT templates is rbldnsd's
// compressed form.

/** Bytes of the last address parsed (valid until the next call) and its length in bits. */
export const ip6 = { bytes: new Uint8Array(16), bits: 0 };

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * rbldnsd's ip6prefix: sets ip6.bytes (zero-filled past what was written) and ip6.bits (16 per
 * group written; 128 when "::" was used). Returns the position after the address, or -1.
 */
export function ip6Prefix(buf: Uint8Array, pos: number, end: number): number {
  const ap = ip6.bytes;
  ap.fill(0);
  let bytes = 0;
  let zstart = -1;
  let ret = -1;
  const COLON = 58;
  if (pos + 1 < end && buf[pos] === COLON && buf[pos + 1] === COLON) {
    zstart = 0;
    pos += 2;
  }
  for (;;) {
    let v = 0;
    const start = pos;
    while (pos < end) {
      const h = hexValue(buf[pos]);
      if (h < 0) break;
      v = v * 16 + h;
      if (v > 0xffff) break;
      pos++;
    }
    if (pos === start || v > 0xffff) break;
    ap[bytes++] = v >>> 8;
    ap[bytes++] = v & 255;
    if (pos >= end || buf[pos] !== COLON || bytes + 2 > 16) {
      ret = bytes * 8;
      break;
    }
    pos++;
    if (zstart < 0 && pos < end && buf[pos] === COLON) {
      zstart = bytes;
      pos++;
    }
  }
  if (zstart >= 0) {
    const zeros = 16 - bytes;
    if (zeros === 0) {
      ret = -1;
    } else {
      ap.copyWithin(zstart + zeros, zstart, bytes);
      ap.fill(0, zstart, zstart + zeros);
      ret = 128;
    }
  }
  if (ret < 0) return -1;
  ip6.bits = ret;
  return pos;
}

/**
 * rbldnsd's ip6atos: lowercase hex groups without leading zeros, the longest run (first of equal
 * runs) of two or more zero groups written "::".
 */
export function formatIp6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b[i] * 256 + b[i + 1]);
  let best = 0;
  let bestAt = 0;
  for (let i = 0; i < 8; i++) {
    let n = 0;
    while (i + n < 8 && words[i + n] === 0) n++;
    if (n > 1 && n > best) {
      best = n;
      bestAt = i;
    }
  }
  if (!best) return words.map((w) => w.toString(16)).join(':');
  const head = words.slice(0, bestAt).map((w) => w.toString(16)).join(':');
  const tail = words.slice(bestAt + best).map((w) => w.toString(16)).join(':');
  return `${head}::${tail}`;
}

/**
 * The address of a reversed nibble name (relative to the zone): exactly 32 one-character
 * lowercase hex labels, least significant nibble first. Fills `out` and returns true, or false.
 */
export function ip6FromNibbles(rel: string, out: Uint8Array): boolean {
  if (rel.length !== 63) return false;
  for (let i = 0; i < 32; i++) {
    const c = rel.charCodeAt(2 * i);
    // Names arrive lowercased; an uppercase nibble here means the caller did not normalise.
    const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (v < 0 || (i < 31 && rel.charCodeAt(2 * i + 1) !== 46)) return false;
    const nib = 31 - i;
    const byte = nib >>> 1;
    if (nib & 1) out[byte] = (out[byte] & 0xf0) | v;
    else out[byte] = (out[byte] & 0x0f) | (v << 4);
  }
  return true;
}

/** The 32-nibble hex text of an address (the key of an ip6tset exclusion). */
export function ip6Hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
  return s;
}
