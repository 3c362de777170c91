// A parsed zone in memory: immutable, swapped in whole by a mirror on reload. Answers a query
// name (relative to the origin) with the values that list it, and renders A and TXT records.
import type { Dnset } from './dnset.js';
import { formatIp4, ip4FromReversed } from './ip4.js';
import type { Ip4Set } from './ip4set.js';
import type { Ip4Tset } from './ip4tset.js';
import { formatIp6, ip6FromNibbles } from './ip6.js';
import type { Ip6Tset } from './ip6tset.js';
import type { NsSet, Soa } from './specials.js';
import { renderTxt, type Substitutions, type ZoneValue } from './template.js';

export const ZONE_TYPES = ['ip4set', 'ip4tset', 'ip6tset', 'dnset'] as const;
export type ZoneType = (typeof ZONE_TYPES)[number];

/** What a listed name resolves to: its values and what "$" stands for in their TXT. */
export interface ZoneHit {
  readonly values: readonly ZoneValue[];
  readonly listed: string;
}

export type Dataset =
  | { readonly type: 'ip4set'; readonly set: Ip4Set }
  | { readonly type: 'ip4tset'; readonly set: Ip4Tset }
  | { readonly type: 'ip6tset'; readonly set: Ip6Tset }
  | { readonly type: 'dnset'; readonly set: Dnset };

export interface LoadedZoneInit {
  readonly dataset: Dataset;
  readonly values: readonly ZoneValue[];
  readonly ttl: number;
  readonly soa: Soa | undefined;
  readonly ns: NsSet | undefined;
  readonly subst: Substitutions;
  readonly expiresAt: number | undefined;
  readonly entries: number;
  readonly malformed: number;
  readonly lines: number;
}

const IP4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** An immutable parsed zone: what a mirror swaps in as a whole on reload. */
export class LoadedZone {
  readonly type: ZoneType;
  /** Answer TTL, seconds. */
  readonly ttl: number;
  readonly soa: Soa | undefined;
  readonly ns: NsSet | undefined;
  /** ms since the epoch after which the data must not be served ($TIMESTAMP). */
  readonly expiresAt: number | undefined;
  /** Entry lines accepted (listings and exclusions). */
  readonly entries: number;
  readonly malformed: number;
  readonly lines: number;
  private readonly dataset: Dataset;
  private readonly values: readonly ZoneValue[];
  private readonly subst: Substitutions;
  private readonly scratch6 = new Uint8Array(16);

  constructor(init: LoadedZoneInit) {
    this.type = init.dataset.type;
    this.dataset = init.dataset;
    this.values = init.values;
    this.ttl = init.ttl;
    this.soa = init.soa;
    this.ns = init.ns;
    this.subst = init.subst;
    this.expiresAt = init.expiresAt;
    this.entries = init.entries;
    this.malformed = init.malformed;
    this.lines = init.lines;
  }

  expired(now: number): boolean {
    return this.expiresAt !== undefined && now > this.expiresAt;
  }

  /** Stored keys (a range counts once per block it was cut into). */
  get stored(): number {
    const d = this.dataset;
    switch (d.type) {
      case 'ip4set':
        return d.set.sizes.reduce((x, y) => x + y, 0);
      case 'dnset':
        return d.set.sizes.plain + d.set.sizes.wild;
      default:
        return d.set.size;
    }
  }

  /** `rel`: the query name below the origin, lowercase ("4.3.2.1", "example.com"). */
  lookup(rel: string): ZoneHit | undefined {
    const d = this.dataset;
    if (d.type === 'dnset') {
      const m = d.set.lookup(rel);
      return m && { values: m.values.map((v) => this.values[v]), listed: m.name };
    }
    if (d.type === 'ip6tset') {
      const b = this.scratch6;
      if (!ip6FromNibbles(rel, b) || !d.set.has(b)) return undefined;
      return { values: this.values, listed: formatIp6(b) };
    }
    const ip = this.ip4Of(rel);
    if (ip < 0) return undefined;
    if (d.type === 'ip4tset') return d.set.has(ip) ? { values: this.values, listed: formatIp4(ip) } : undefined;
    const vals = d.set.lookup(ip);
    return vals && { values: vals.map((v) => this.values[v]), listed: formatIp4(ip) };
  }

  /**
   * The IPv4 address of a query name, or -1. Besides "4.3.2.1", rbldnsd answers IPv4 lists for
   * the nibble names of 6to4 (2002:V4ADDR::/48) and IPv4-mapped (::ffff:V4ADDR) addresses.
   */
  private ip4Of(rel: string): number {
    const ip = ip4FromReversed(rel);
    if (ip >= 0 || rel.length !== 63) return ip;
    const b = this.scratch6;
    if (!ip6FromNibbles(rel, b)) return -1;
    const at = b[0] === 0x20 && b[1] === 0x02 ? 2 : IP4_MAPPED_PREFIX.every((x, i) => b[i] === x) ? 12 : -1;
    if (at < 0) return -1;
    return b[at] * 0x1000000 + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
  }

  /** The distinct A records of a hit, dotted. */
  aRecords(hit: ZoneHit): string[] {
    const out: string[] = [];
    for (const v of hit.values) {
      const a = formatIp4(v.a);
      if (!out.includes(a)) out.push(a);
    }
    return out;
  }

  /** The distinct non-empty TXT texts of a hit, as bytes of the file (latin1 strings). */
  txtRecords(hit: ZoneHit): string[] {
    const out: string[] = [];
    for (const v of hit.values) {
      const t = renderTxt(v.txt, hit.listed, this.subst);
      if (t && !out.includes(t)) out.push(t);
    }
    return out;
  }
}
