// ip4set: IPv4 addresses and ranges, each with its own A/TXT value, and "!" exclusions.
// Stored as rbldnsd stores it (rbldnsd_ip4set.c): every range is cut into whole /8, /16, /24
// blocks and single addresses, one sorted array per level; a query looks at the single
// addresses first, then the /24, /16 and /8 blocks, and the first level that has the address
// decides — so "10.0.0.0/8" with "!10.1.2.0/24" and "10.1.2.3" lists 10.1.2.3 but not 10.1.2.4.
// An exclusion at the same level as listings wins over them.
import { expandIp4Range } from './ip4.js';
import { GrowI32, GrowU32, lowerBound, sortPairsInPlace } from './typed-arrays.js';

/** Value index of an exclusion entry. */
export const EXCLUDED = -1;

const LEVEL_MASK = [0xffffffff, 0xffffff00, 0xffff0000, 0xff000000];

export class Ip4SetBuilder {
  private readonly keys = [new GrowU32(), new GrowU32(), new GrowU32(), new GrowU32()];
  private readonly vals = [new GrowI32(), new GrowI32(), new GrowI32(), new GrowI32()];

  private value = 0;
  /** One callback for every range (no closure per line of a million-line file). */
  private readonly addBlocks = (level: number, first: number, count: number): void => {
    this.keys[level].pushSeries(first, 2 ** (8 * level), count);
    this.vals[level].pushRepeat(this.value, count);
  };

  /** Lists (value >= 0) or excludes (EXCLUDED) the inclusive range a..b. */
  add(a: number, b: number, value: number): void {
    this.value = value;
    expandIp4Range(a, b, this.addBlocks);
  }

  finish(): Ip4Set {
    const keys: Uint32Array[] = [];
    const vals: Int32Array[] = [];
    for (let level = 0; level < 4; level++) {
      // Sorted and compacted in the builder's own buffers (a million-entry zone must not
      // hold several spare copies at its peak); only the result is copied.
      const k = this.keys[level].view();
      const v = this.vals[level].view();
      sortPairsInPlace(k, v);
      const [ck, cv] = compactRuns(k, v);
      keys.push(ck);
      vals.push(cv);
    }
    return new Ip4Set(keys, vals);
  }
}

/**
 * Within each run of equal keys: a single EXCLUDED entry if the run has one, else each distinct
 * value once (in file order: the sort is stable). Works in place; returns right-sized copies.
 */
export function compactRuns(keys: Uint32Array, vals: Int32Array): [Uint32Array, Int32Array] {
  const n = keys.length;
  let o = 0;
  for (let i = 0; i < n; ) {
    const k = keys[i];
    let j = i + 1;
    while (j < n && keys[j] === k) j++;
    if (j === i + 1) {
      keys[o] = k;
      vals[o++] = vals[i];
    } else {
      let excluded = false;
      for (let x = i; x < j; x++) if (vals[x] === EXCLUDED) excluded = true;
      if (excluded) {
        keys[o] = k;
        vals[o++] = EXCLUDED;
      } else {
        // o <= i: writing at o never overwrites an entry of this run not yet read.
        const start = o;
        for (let x = i; x < j; x++) {
          const v = vals[x];
          let seen = false;
          for (let y = start; y < o; y++) if (vals[y] === v) seen = true;
          if (!seen) {
            keys[o] = k;
            vals[o++] = v;
          }
        }
      }
    }
    i = j;
  }
  return [keys.slice(0, o), vals.slice(0, o)];
}

export class Ip4Set {
  constructor(
    private readonly keys: readonly Uint32Array[],
    private readonly vals: readonly Int32Array[],
  ) {}

  /** Stored blocks per level (/32, /24, /16, /8), for statistics. */
  get sizes(): number[] {
    return this.keys.map((k) => k.length);
  }

  /** The value indices listing address `ip`, or undefined when it is not listed (or excluded). */
  lookup(ip: number): number[] | undefined {
    for (let level = 0; level < 4; level++) {
      const keys = this.keys[level];
      const k = (ip & LEVEL_MASK[level]) >>> 0;
      let i = lowerBound(keys, k);
      if (i >= keys.length || keys[i] !== k) continue;
      const vals = this.vals[level];
      if (vals[i] === EXCLUDED) return undefined;
      const out = [vals[i]];
      while (++i < keys.length && keys[i] === k) out.push(vals[i]);
      return out;
    }
    return undefined;
  }
}
