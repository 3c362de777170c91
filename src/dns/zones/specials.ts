// The "$" lines of an rbldnsd zone file (also written "#$", ";$" or ":$" so that a file can be
// shared with djbdns' rbldns): $TTL, $SOA, $NS, $MAXRANGE4, $TIMESTAMP, the substitution
// variables $0..$9 and the base template "$=". They are rare, so they are parsed as strings;
// the rules (first $SOA/$NS/$n wins, last $TTL wins, $MAXRANGE4 only shrinks) are rbldnsd's.

export interface Soa {
  readonly ttl: number;
  readonly mname: string;
  readonly rname: string;
  /** 0: the file's modification time, as rbldnsd. */
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** Also the TTL of the SOA sent with negative answers. */
  readonly minimum: number;
}

export interface NsSet {
  readonly ttl: number;
  readonly names: readonly string[];
}

/** What the "$" lines of one file set. TTLs in seconds. */
export interface ZoneHeader {
  ttl: number | undefined;
  soa: Soa | undefined;
  ns: NsSet | undefined;
  /** $0..$9. */
  vars: (string | undefined)[];
  base: string | undefined;
  /** Largest IPv4 range an entry may cover (addresses); 0: no limit. */
  maxRange4: number;
  /** When the data stops being served ($TIMESTAMP … expires), ms since the epoch. */
  expiresAt: number | undefined;
}

export function emptyHeader(): ZoneHeader {
  return { ttl: undefined, soa: undefined, ns: undefined, vars: new Array(10).fill(undefined), base: undefined, maxRange4: 0, expiresAt: undefined };
}

/** A "$" line that makes the whole file unusable (rbldnsd aborts the load). */
export class FatalZoneLine extends Error {}

const UINT32_MAX = 0xffffffff;

/** A tiny cursor over the text of one special line. */
class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
  skipSpace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
  }
  /** After a field: the end of the line, or at least one blank (then all blanks are skipped). */
  endField(alsoColon = false): boolean {
    if (this.done || (alsoColon && this.peek() === ':')) return true;
    if (this.peek() !== ' ' && this.peek() !== '\t') return false;
    this.skipSpace();
    return true;
  }
  digits(max = UINT32_MAX): number | undefined {
    const m = /^\d+/.exec(this.s.slice(this.i));
    if (!m) return undefined;
    const n = Number(m[0]);
    if (n > max) return undefined;
    this.i += m[0].length;
    return n;
  }
  /** A blank-delimited word. */
  word(): string {
    const start = this.i;
    while (!this.done && this.peek() !== ' ' && this.peek() !== '\t') this.i++;
    const w = this.s.slice(start, this.i);
    this.skipSpace();
    return w;
  }
}

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** rbldnsd's parse_time: a number of seconds with an optional unit (s, m, h, d, w). */
function time(c: Cursor): number | undefined {
  const n = c.digits();
  if (n === undefined) return undefined;
  const unit = UNIT[c.peek().toLowerCase()];
  let t = n;
  if (unit !== undefined) {
    c.i++;
    t = n * unit;
    if (t > UINT32_MAX) return undefined;
  }
  return c.endField(true) ? t : undefined;
}

function uint32(c: Cursor): number | undefined {
  const n = c.digits();
  return n !== undefined && c.endField() ? n : undefined;
}

/** A domain name as rbldnsd's parse_dn (without escapes): empty labels dropped, each <= 63. */
function domain(c: Cursor): string | undefined {
  const w = c.word();
  if (!w) return undefined;
  const labels = w.split('.').filter((l) => l.length > 0);
  if (labels.some((l) => l.length > 63 || l.includes('\\'))) return undefined;
  const name = labels.join('.');
  return name.length <= 253 ? name : undefined;
}

/** A keyword (any case) followed by a blank; positions the cursor after the blanks. */
function keyword(c: Cursor, word: string): boolean {
  const s = c.s;
  if (s.length <= word.length || s.slice(0, word.length).toLowerCase() !== word) return false;
  const next = s[word.length];
  if (next !== ' ' && next !== '\t') return false;
  c.i = word.length;
  c.skipSpace();
  return true;
}

/** rbldnsd's parse_timestamp: yyyy[:-]mm[:-]dd[[:-]hh[[:-]mi[[:-]ss]]], or 0 / "-" for none. Seconds. */
function timestamp(c: Cursor): number | undefined {
  const rest = c.s.slice(c.i);
  if (/^[0:-]([ \t]|$)/.test(rest)) {
    c.i++;
    c.skipSpace();
    return 0;
  }
  const part = (min: number, max: number, width: number): number | undefined => {
    const m = new RegExp(`^\\d{1,${width}}`).exec(c.s.slice(c.i));
    if (!m) return undefined;
    const n = Number(m[0]);
    if (n < min || n > max) return undefined;
    c.i += m[0].length;
    if (c.peek() === ':' || c.peek() === '-') c.i++;
    return n;
  };
  const year = part(1970, 2038, 4);
  const mon = year === undefined ? undefined : part(1, 12, 2);
  if (year === undefined || mon === undefined) return undefined;
  const mdays = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  const day = part(1, mdays[mon - 1], 2);
  if (day === undefined) return undefined;
  const more = (min: number, max: number): number | undefined => (!c.done && c.peek() !== ' ' && c.peek() !== '\t' ? part(min, max, 2) : 0);
  const hour = more(0, 23);
  const minute = hour === undefined ? undefined : more(0, 59);
  const sec = minute === undefined ? undefined : more(0, 59);
  if (hour === undefined || minute === undefined || sec === undefined || !c.endField()) return undefined;
  return Date.UTC(year, mon - 1, day, hour, minute, sec) / 1000;
}

/**
 * Applies one special line (the text after "$", "#$", ";$" or ":$") to the header. Returns
 * undefined when the line is accepted, else why it is ignored. Throws FatalZoneLine when the
 * whole file must be refused (a $TIMESTAMP in the future, as rbldnsd).
 */
export function applySpecial(text: string, h: ZoneHeader, defaultTtl: number, nowMs: number): string | undefined {
  const c = new Cursor(text);
  const ttlOr = (t: number | undefined, fallback: number) => (t === 0 ? fallback : t);

  if (keyword(c, 'soa')) {
    if (h.soa) return undefined;
    const ttl = ttlOr(time(c), h.ttl ?? defaultTtl);
    const mname = ttl === undefined ? undefined : domain(c);
    const rname = mname === undefined ? undefined : domain(c);
    const serial = rname === undefined ? undefined : uint32(c);
    const t = serial === undefined ? [] : [time(c), time(c), time(c), time(c)];
    if (ttl === undefined || mname === undefined || rname === undefined || serial === undefined || t.length < 4 || t.some((x) => x === undefined) || !c.done) {
      return 'invalid $SOA (want: ttl origin-name person-name serial refresh retry expire minttl)';
    }
    h.soa = { ttl, mname, rname, serial, refresh: t[0]!, retry: t[1]!, expire: t[2]!, minimum: t[3]! };
    return undefined;
  }

  if (keyword(c, 'ns') || keyword(c, 'nameserver')) {
    if (h.ns) return undefined;
    const ttl = ttlOr(time(c), h.ttl ?? defaultTtl);
    if (ttl === undefined) return 'invalid $NS TTL';
    const names: string[] = [];
    do {
      // "-name" is a name server commented out.
      if (c.peek() === '-') {
        c.word();
        continue;
      }
      const n = domain(c);
      if (n === undefined) return 'invalid $NS name';
      if (!names.includes(n.toLowerCase())) names.push(n);
    } while (!c.done);
    h.ns = { ttl, names };
    return undefined;
  }

  if (keyword(c, 'ttl')) {
    const t = time(c);
    if (t === undefined || !c.done) return 'invalid $TTL';
    h.ttl = t === 0 ? undefined : t;
    return undefined;
  }

  if (keyword(c, 'maxrange4')) {
    const cidr = c.peek() === '/';
    if (cidr) c.i++;
    const r = c.digits();
    if (r === undefined || !c.done || r === 0 || (cidr && r > 32)) return 'invalid $MAXRANGE4';
    const size = cidr ? 2 ** (32 - r) : r;
    if (h.maxRange4 && h.maxRange4 < size) return `$MAXRANGE4 may only decrease (stays ${h.maxRange4})`;
    h.maxRange4 = size;
    return undefined;
  }

  // "$1 text" .. "$9 text", and the base template "$= text".
  if (/^[0-9=][ \t]/.test(text)) {
    const value = text.slice(2).replace(/^[ \t]+/, '');
    if (!value) return 'empty substitution variable';
    if (text[0] === '=') h.base ??= value;
    else h.vars[Number(text[0])] ??= value;
    return undefined;
  }

  if (keyword(c, 'timestamp')) {
    const stamp = timestamp(c);
    if (stamp === undefined) return 'invalid $TIMESTAMP';
    let expires = 0;
    if (!c.done) {
      if (c.peek() === '+') {
        c.i++;
        const rel = time(c);
        if (rel === undefined || !c.done || !stamp || !rel) return 'invalid $TIMESTAMP expiry';
        expires = stamp + rel;
      } else {
        const abs = timestamp(c);
        if (abs === undefined || !c.done) return 'invalid $TIMESTAMP expiry';
        expires = abs;
      }
    }
    if (stamp && stamp * 1000 > nowMs) {
      throw new FatalZoneLine(`$TIMESTAMP is ${Math.round(stamp - nowMs / 1000)} s in the future: data refused, as rbldnsd does`);
    }
    if (expires && (h.expiresAt === undefined || h.expiresAt > expires * 1000)) h.expiresAt = expires * 1000;
    return undefined;
  }

  return 'unrecognized special entry';
}
