// ip4tset ("trivial" ip4set, rbldnsd_ip4tset.c): single IPv4 addresses sharing one A/TXT value —
// the shape of the big single-address lists. One sorted Uint32Array, four bytes per entry.
import { GrowU32, lowerBound } from './typed-arrays.js';

export class Ip4TsetBuilder {
  private readonly keys = new GrowU32(65536);

  add(ip: number): void {
    this.keys.push(ip);
  }

  finish(): Ip4Tset {
    // Sorted in the builder's own buffer; only the deduplicated result is copied.
    const k = this.keys.view();
    k.sort();
    let o = 0;
    for (let i = 0; i < k.length; i++) if (i === 0 || k[i] !== k[o - 1]) k[o++] = k[i];
    return new Ip4Tset(k.slice(0, o));
  }
}

export class Ip4Tset {
  constructor(private readonly keys: Uint32Array) {}

  get size(): number {
    return this.keys.length;
  }

  has(ip: number): boolean {
    const i = lowerBound(this.keys, ip);
    return i < this.keys.length && this.keys[i] === ip;
  }
}
