// The rbldnsd zone file parser: bytes in, a LoadedZone out. It walks the file line by line
// without building a string per line; a malformed line is reported (file, line, text, reason)
// and skipped, as rbldnsd warns and skips. It can run in slices (parseZoneAsync) so that loading
// a million-line file never stalls the event loop.
import { DnsetBuilder } from './dnset.js';
import { ip4, ip4mask, ip4Prefix, ip4Range } from './ip4.js';
import { EXCLUDED, Ip4SetBuilder } from './ip4set.js';
import { Ip4TsetBuilder } from './ip4tset.js';
import { ip6, ip6Prefix } from './ip6.js';
import { Ip6TsetBuilder } from './ip6tset.js';
import { LoadedZone, type Dataset, type ZoneType } from './loaded-zone.js';
import { applySpecial, emptyHeader, type ZoneHeader } from './specials.js';
import { DEFAULT_VALUE, latin1, parseValue, skipSpace, type ZoneValue } from './template.js';

export { LoadedZone, ZONE_TYPES, type ZoneHit, type ZoneType } from './loaded-zone.js';

/** A line of a zone file that was skipped, and why. */
export interface MalformedLine {
  readonly file: string;
  readonly line: number;
  /** The line as written (cut to 200 bytes). */
  readonly text: string;
  readonly reason: string;
}

export interface ParseOptions {
  readonly type: ZoneType;
  /** The file's name, for reports. */
  readonly file: string;
  /** Answer TTL in seconds when the file sets none ($TTL), like rbldnsd's -t. */
  readonly defaultTtl: number;
  /** Now, ms since the epoch (for $TIMESTAMP). */
  readonly now?: number;
  /** The file's modification time, seconds since the epoch: the SOA serial when $SOA gives 0. */
  readonly fileTime?: number;
  readonly onMalformed?: (line: MalformedLine) => void;
}

const SP = 32;
const TAB = 9;
const CR = 13;
const LF = 10;
const HASH = 35;
const SEMI = 59;
const COLON = 58;
const BANG = 33;
const DOLLAR = 36;
const DOT = 46;
const STAR = 42;

const isSpace = (c: number) => c === SP || c === TAB;
const isComment = (c: number) => c === HASH || c === SEMI;

export class ZoneParser {
  private readonly buf: Buffer;
  private pos = 0;
  private lineNo = 0;
  private readonly header: ZoneHeader = emptyHeader();
  private readonly values: ZoneValue[] = [];
  private readonly valueIndex = new Map<string, number>();
  /** The current default value (ip4set, dnset: changed by each ":" line). */
  private def: ZoneValue = DEFAULT_VALUE;
  private defIdx = -1;
  /** ip4tset, ip6tset: the first ":" line sets the one value of every entry. */
  private defSet = false;
  private entries = 0;
  private malformed = 0;
  private readonly ip4set?: Ip4SetBuilder;
  private readonly ip4tset?: Ip4TsetBuilder;
  private readonly ip6tset?: Ip6TsetBuilder;
  private readonly dnset?: DnsetBuilder;
  /** Scratch for one normalised dnset name. */
  private readonly name = new Uint8Array(256);

  constructor(
    bytes: Uint8Array,
    private readonly opts: ParseOptions,
  ) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    switch (opts.type) {
      case 'ip4set':
        this.ip4set = new Ip4SetBuilder();
        break;
      case 'ip4tset':
        this.ip4tset = new Ip4TsetBuilder();
        break;
      case 'ip6tset':
        this.ip6tset = new Ip6TsetBuilder();
        break;
      case 'dnset':
        this.dnset = new DnsetBuilder();
        break;
      default:
        throw new Error(`unknown zone type "${String(opts.type)}"`);
    }
  }

  /** Parses up to `maxLines` more lines; true when the whole file is read. */
  step(maxLines: number): boolean {
    const buf = this.buf;
    const len = buf.length;
    for (let n = 0; n < maxLines && this.pos < len; n++) {
      const nl = buf.indexOf(LF, this.pos);
      let s = this.pos;
      let e = nl < 0 ? len : nl;
      this.pos = nl < 0 ? len : nl + 1;
      this.lineNo++;
      // rbldnsd takes a CR as part of the line and so refuses every line of a CRLF file; here
      // such files load (a deliberate difference, see docs/dns-zones.md).
      if (e > s && buf[e - 1] === CR) e--;
      while (s < e && isSpace(buf[s])) s++;
      while (e > s && isSpace(buf[e - 1])) e--;
      if (s === e) continue;
      const c0 = buf[s];
      if (c0 === DOLLAR) this.special(s, s + 1, e);
      else if ((isComment(c0) || c0 === COLON) && s + 1 < e && buf[s + 1] === DOLLAR) this.special(s, s + 2, e);
      else if (!isComment(c0)) this.dataLine(s, e);
    }
    return this.pos >= len;
  }

  finish(): LoadedZone {
    const h = this.header;
    let dataset: Dataset;
    let values = this.values;
    if (this.ip4set) dataset = { type: 'ip4set', set: this.ip4set.finish() };
    else if (this.ip4tset) dataset = { type: 'ip4tset', set: this.ip4tset.finish() };
    else if (this.ip6tset) dataset = { type: 'ip6tset', set: this.ip6tset.finish() };
    else dataset = { type: 'dnset', set: this.dnset!.finish() };
    if (dataset.type === 'ip4tset' || dataset.type === 'ip6tset') values = [this.def];
    return new LoadedZone({
      dataset,
      values,
      ttl: h.ttl ?? this.opts.defaultTtl,
      soa: h.soa && h.soa.serial === 0 ? { ...h.soa, serial: this.opts.fileTime ?? 0 } : h.soa,
      ns: h.ns?.names.length ? h.ns : undefined,
      subst: { vars: h.vars, base: h.base },
      expiresAt: h.expiresAt,
      entries: this.entries,
      malformed: this.malformed,
      lines: this.lineNo,
    });
  }

  private report(s: number, e: number, reason: string): void {
    this.malformed++;
    this.opts.onMalformed?.({ file: this.opts.file, line: this.lineNo, text: latin1(this.buf, s, Math.min(e, s + 200)), reason });
  }

  private special(lineStart: number, s: number, e: number): void {
    const reason = applySpecial(latin1(this.buf, s, e), this.header, this.opts.defaultTtl, this.opts.now ?? Date.now());
    if (reason) this.report(lineStart, e, reason);
  }

  private intern(v: ZoneValue): number {
    const key = `${v.a} ${v.txt}`;
    let i = this.valueIndex.get(key);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(v);
      this.valueIndex.set(key, i);
    }
    return i;
  }

  private defaultIndex(): number {
    if (this.defIdx < 0) this.defIdx = this.intern(this.def);
    return this.defIdx;
  }

  /** A ":A:TXT" line: the default value of the entries that follow (or of all, for the tsets). */
  private defaultLine(s: number, e: number): void {
    const v = parseValue(this.buf, s, e, DEFAULT_VALUE);
    if (typeof v === 'string') return this.report(s, e, v);
    if (this.opts.type === 'ip4tset' || this.opts.type === 'ip6tset') {
      // rbldnsd keeps the first default of a "trivial" set and ignores the others.
      if (this.defSet) return;
      this.defSet = true;
    }
    this.def = v;
    this.defIdx = -1;
  }

  /** The value of an entry whose address or name ended at `p`; -2 when it is malformed. */
  private entryValue(p: number, s: number, e: number): number {
    const r = skipSpace(this.buf, p, e);
    if (r >= e || isComment(this.buf[r])) return this.defaultIndex();
    const v = parseValue(this.buf, r, e, this.def);
    if (typeof v === 'string') {
      this.report(s, e, v);
      return -2;
    }
    return this.intern(v);
  }

  private validTail(p: number, e: number): boolean {
    if (p >= e) return true;
    const c = this.buf[p];
    return isSpace(c) || isComment(c) || c === COLON;
  }

  private dataLine(s: number, e: number): void {
    const buf = this.buf;
    if (buf[s] === COLON) return this.defaultLine(s, e);
    const excluded = buf[s] === BANG;
    const p = excluded ? skipSpace(buf, s + 1, e) : s;
    switch (this.opts.type) {
      case 'ip4set': {
        const q = ip4Range(buf, p, e);
        if (q < 0 || ip4.bits === 0 || !this.validTail(q, e)) return this.report(s, e, 'invalid address');
        const { a, b, bits } = ip4;
        if ((a & ~ip4mask(bits)) !== 0) return this.report(s, e, 'invalid range (non-zero host part)');
        const max = this.header.maxRange4;
        if (max && max <= b - a) return this.report(s, e, `range of ${b - a + 1} addresses is larger than $MAXRANGE4 (${max})`);
        const value = excluded ? EXCLUDED : this.entryValue(q, s, e);
        if (value === -2) return;
        this.ip4set!.add(a, b, value);
        break;
      }
      case 'ip4tset': {
        // No exclusions and no per-entry values in a trivial set (a value is ignored, as by rbldnsd).
        const q = ip4Prefix(buf, s, e);
        if (q < 0 || ip4.bits !== 32 || !this.validTail(q, e)) return this.report(s, e, 'invalid address');
        this.ip4tset!.add(ip4.a);
        break;
      }
      case 'ip6tset': {
        const q = ip6Prefix(buf, p, e);
        if (q < 0 || !this.validTail(q, e)) return this.report(s, e, 'invalid address');
        const want = excluded ? 128 : 64;
        if (ip6.bits !== want) {
          return this.report(s, e, `invalid address for ${excluded ? 'an exclusion' : 'an entry'} (should be ${want} bits)`);
        }
        if (excluded) this.ip6tset!.exclude(ip6.bytes);
        else this.ip6tset!.add(ip6.bytes);
        break;
      }
      case 'dnset': {
        let q = p;
        let kind: 'plain' | 'wild' | 'both' = 'plain';
        if (buf[q] === DOT) {
          kind = 'both';
          q++;
        } else if (buf[q] === STAR && q + 1 < e && buf[q + 1] === DOT) {
          kind = 'wild';
          q += 2;
        }
        let t = q;
        while (t < e && !isSpace(buf[t])) t++;
        const len = this.normaliseName(q, t);
        if (len <= 0) return this.report(s, e, len < 0 ? 'domain name with "\\" escapes (not supported)' : 'invalid domain name');
        const value = excluded ? EXCLUDED : this.entryValue(t, s, e);
        if (value === -2) return;
        this.dnset!.add(this.name, len, kind, value);
        break;
      }
    }
    this.entries++;
  }

  /**
   * Copies the name in buf[s..e) into this.name as rbldnsd's dns_ptodn does — empty labels
   * dropped, labels at most 63 bytes, at most 255 bytes in wire form — lowercased. Returns its
   * length, 0 when it is not a name, -1 when it has escapes.
   */
  private normaliseName(s: number, e: number): number {
    const buf = this.buf;
    const out = this.name;
    let len = 0;
    let label = 0;
    let wire = 1;
    for (let i = s; i < e; i++) {
      let c = buf[i];
      if (c === 92 /* \ */) return -1;
      if (c === DOT) {
        label = 0;
        continue;
      }
      if (label === 0) {
        if (len > 0) out[len++] = DOT;
        wire++;
      }
      if (++label > 63 || ++wire > 255) return 0;
      if (c >= 65 && c <= 90) c += 32;
      out[len++] = c;
    }
    return len;
  }
}

/** Parses a whole zone file at once (tests, small files). */
export function parseZone(bytes: Uint8Array, opts: ParseOptions): LoadedZone {
  const p = new ZoneParser(bytes, opts);
  p.step(Infinity);
  return p.finish();
}

/** Parses in slices of `slice` lines, yielding to the event loop between them. */
export async function parseZoneAsync(bytes: Uint8Array, opts: ParseOptions, slice = 25_000): Promise<LoadedZone> {
  const p = new ZoneParser(bytes, opts);
  while (!p.step(slice)) await new Promise<void>((resolve) => setImmediate(resolve));
  return p.finish();
}

