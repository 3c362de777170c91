// dnset (rbldnsd_dnset.c): domain names with A/TXT values. "example.com" lists that name only,
// "*.example.com" its subdomains only, ".example.com" both; "!" excludes. An exact entry for the
// queried name decides (an excluded name is not listed even under a listed wildcard); otherwise
// the longest matching wildcard decides.
//
// Names are kept lowercased, back to back in one byte array, found through a sorted array of
// 32-bit FNV-1a hashes: about 13 bytes per entry plus the name itself, no string or object per
// entry, and still a binary search per lookup.
import { EXCLUDED } from './ip4set.js';
import { gatherI32, gatherU32, GrowI32, GrowU32, GrowU8, lowerBound, sortOrder } from './typed-arrays.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i], FNV_PRIME);
  return h >>> 0;
}

function hashString(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/** One table of names (the exact names, or the bases of wildcards). */
class NameTableBuilder {
  private readonly bytes = new GrowU8();
  private readonly hash = new GrowU32();
  private readonly off = new GrowU32();
  private readonly val = new GrowI32();

  /** Adds the name in name[0..len) (lowercase). */
  add(name: Uint8Array, len: number, value: number): void {
    const off = this.bytes.length;
    for (let i = 0; i < len; i++) this.bytes.push(name[i]);
    this.off.push(off);
    this.hash.push(hashBytes(name, 0, len));
    this.val.push(value);
  }

  finish(): NameTable {
    const bytes = this.bytes.finish();
    const rawOff = this.off.view();
    const rawHash = this.hash.view();
    const rawVal = this.val.view();
    // Each name ends where the next added one begins.
    const rawEnd = new Uint32Array(rawOff.length);
    for (let i = 0; i < rawOff.length; i++) rawEnd[i] = i + 1 < rawOff.length ? rawOff[i + 1] : bytes.length;
    const order = sortOrder(rawHash);
    const hash = gatherU32(rawHash, order);
    const off = gatherU32(rawOff, order);
    const end = gatherU32(rawEnd, order);
    const val = gatherI32(rawVal, order);
    return NameTable.compact(bytes, hash, off, end, val);
  }
}

class NameTable {
  private constructor(
    private readonly bytes: Uint8Array,
    private readonly hash: Uint32Array,
    private readonly off: Uint32Array,
    private readonly end: Uint32Array,
    private readonly val: Int32Array,
  ) {}

  get size(): number {
    return this.hash.length;
  }

  /**
   * Groups the entries of each name together (names that share a hash are rare) and applies
   * rbldnsd's rule per name: an exclusion wins; otherwise each distinct value once, file order.
   */
  static compact(bytes: Uint8Array, hash: Uint32Array, off: Uint32Array, end: Uint32Array, val: Int32Array): NameTable {
    const n = hash.length;
    const H = new Uint32Array(n);
    const O = new Uint32Array(n);
    const E = new Uint32Array(n);
    const V = new Int32Array(n);
    let o = 0;
    const same = (x: number, y: number) => {
      const lx = end[x] - off[x];
      if (lx !== end[y] - off[y]) return false;
      for (let i = 0; i < lx; i++) if (bytes[off[x] + i] !== bytes[off[y] + i]) return false;
      return true;
    };
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && hash[j] === hash[i]) j++;
      if (j === i + 1) {
        H[o] = hash[i];
        O[o] = off[i];
        E[o] = end[i];
        V[o++] = val[i];
        i = j;
        continue;
      }
      const done = new Uint8Array(j - i);
      for (let x = i; x < j; x++) {
        if (done[x - i]) continue;
        const group: number[] = [];
        for (let y = x; y < j; y++) {
          if (done[y - i] || !same(x, y)) continue;
          done[y - i] = 1;
          group.push(y);
        }
        const values = group.some((g) => val[g] === EXCLUDED) ? [EXCLUDED] : [...new Set(group.map((g) => val[g]))];
        for (const v of values) {
          H[o] = hash[x];
          O[o] = off[x];
          E[o] = end[x];
          V[o++] = v;
        }
      }
      i = j;
    }
    return new NameTable(bytes, H.slice(0, o), O.slice(0, o), E.slice(0, o), V.slice(0, o));
  }

  /** The values of `name` ([EXCLUDED] for an exclusion), or undefined when it has no entry. */
  find(name: string): number[] | undefined {
    const h = hashString(name);
    let i = lowerBound(this.hash, h);
    for (; i < this.hash.length && this.hash[i] === h; i++) {
      if (!this.matches(i, name)) continue;
      const out = [this.val[i]];
      const first = this.off[i];
      while (++i < this.hash.length && this.hash[i] === h && this.off[i] === first) out.push(this.val[i]);
      return out;
    }
    return undefined;
  }

  private matches(i: number, name: string): boolean {
    const start = this.off[i];
    if (this.end[i] - start !== name.length) return false;
    for (let k = 0; k < name.length; k++) if (this.bytes[start + k] !== name.charCodeAt(k)) return false;
    return true;
  }
}

export class DnsetBuilder {
  private readonly plain = new NameTableBuilder();
  private readonly wild = new NameTableBuilder();

  /** `kind`: 'plain' (name), 'wild' (*.name) or 'both' (.name). */
  add(name: Uint8Array, len: number, kind: 'plain' | 'wild' | 'both', value: number): void {
    if (kind !== 'wild') this.plain.add(name, len, value);
    if (kind !== 'plain') this.wild.add(name, len, value);
  }

  finish(): Dnset {
    return new Dnset(this.plain.finish(), this.wild.finish());
  }
}

export interface DnsetMatch {
  readonly values: number[];
  /** The entry that matched (the base of a wildcard): what "$" stands for in TXT templates. */
  readonly name: string;
}

export class Dnset {
  constructor(
    private readonly plain: NameTable,
    private readonly wild: NameTable,
  ) {}

  get sizes(): { plain: number; wild: number } {
    return { plain: this.plain.size, wild: this.wild.size };
  }

  /** `name` lowercased, without the zone origin. */
  lookup(name: string): DnsetMatch | undefined {
    const exact = this.plain.find(name);
    if (exact) return exact[0] === EXCLUDED ? undefined : { values: exact, name };
    // At least one label is taken off for the wildcard itself; then the longest base first.
    for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
      const base = name.slice(dot + 1);
      const hit = this.wild.find(base);
      if (hit) return hit[0] === EXCLUDED ? undefined : { values: hit, name: base };
    }
    return undefined;
  }
}
