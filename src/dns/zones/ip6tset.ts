// ip6tset (rbldnsd_ip6tset.c): IPv6 /64 prefixes sharing one A/TXT value, with single-address
// (/128) exclusions. The /64s are two parallel Uint32Arrays (high and low half) sorted as one
// 64-bit key; exclusions are few in practice and kept in a Set of 32-nibble hex keys.
import { gatherU32, GrowU32, sortOrder } from './typed-arrays.js';
import { ip6Hex } from './ip6.js';

export class Ip6TsetBuilder {
  private readonly hi = new GrowU32();
  private readonly lo = new GrowU32();
  private readonly excluded = new Set<string>();

  /** Lists the /64 of the first 8 bytes of `bytes`. */
  add(bytes: Uint8Array): void {
    this.hi.push(word(bytes, 0));
    this.lo.push(word(bytes, 4));
  }

  exclude(bytes: Uint8Array): void {
    this.excluded.add(ip6Hex(bytes));
  }

  finish(): Ip6Tset {
    const hi = this.hi.view();
    const lo = this.lo.view();
    const order = sortOrder(hi, sortOrder(lo));
    const sh = gatherU32(hi, order);
    const sl = gatherU32(lo, order);
    let o = 0;
    for (let i = 0; i < sh.length; i++) {
      if (o > 0 && sh[i] === sh[o - 1] && sl[i] === sl[o - 1]) continue;
      sh[o] = sh[i];
      sl[o++] = sl[i];
    }
    return new Ip6Tset(sh.slice(0, o), sl.slice(0, o), this.excluded);
  }
}

function word(b: Uint8Array, at: number): number {
  return b[at] * 0x1000000 + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

export class Ip6Tset {
  constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly excluded: ReadonlySet<string>,
  ) {}

  get size(): number {
    return this.hi.length;
  }

  get exclusions(): number {
    return this.excluded.size;
  }

  /** Whether the full address `bytes` is in a listed /64 and not excluded. */
  has(bytes: Uint8Array): boolean {
    const h = word(bytes, 0);
    const l = word(bytes, 4);
    let lo = 0;
    let hi = this.hi.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.hi[mid] < h || (this.hi[mid] === h && this.lo[mid] < l)) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= this.hi.length || this.hi[lo] !== h || this.lo[lo] !== l) return false;
    return this.excluded.size === 0 || !this.excluded.has(ip6Hex(bytes));
  }
}
