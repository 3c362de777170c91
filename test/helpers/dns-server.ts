// An authoritative DNS server on loopback (UDP and TCP) serving a zone given as data, for tests
// that need the gateway's real DNS path. Built on the third-party `dns2` package, so that the
// project's own DNS client (src/dns/client.ts, dns-packet) is tested against an independent
// implementation rather than against itself.
//
//   const dns = await startDnsServer({
//     'example.org': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.0/24 -all' }, { type: 'A', data: '192.0.2.1' }],
//     'slow.example.org': [{ type: 'TIMEOUT' }],
//   });
//   const resolver = createResolver({ servers: [dns.server], ... });
//   ...
//   await dns.close();
//
// What it answers, for a question NAME/TYPE (names compare case-insensitively, trailing dot ignored):
// - records of TYPE at NAME: NOERROR with them (AA set, TTL `ttl`, default 60 s);
// - a CNAME at NAME (TYPE not CNAME): the CNAME, then what the target answers if the target is in
//   the zone (chains followed up to 8 links; a loop ends the chain), as an authoritative server does;
// - no TYPE records at NAME but a marker: TIMEOUT never answers, SERVFAIL answers SERVFAIL (RCODE 2),
//   MALFORMED answers a packet no decoder can read (a name compression loop: a broken server or an attacker);
//   a marker applies only to the types NAME has no records of;
// - NAME known (or an empty non-terminal: a known name lies below it) without TYPE: NODATA
//   (NOERROR, no answers);
// - anything else: NXDOMAIN.
// Answers bigger than the client's UDP size (512 octets, or its EDNS0 size) are truncated (TC)
// over UDP by dns2, so the client must retry over TCP: huge TXT records exercise that path.
// TXT/SPF data: a string is one character-string, an array several (a string longer than 255
// octets is split into 255-octet strings). A string whose characters all fit in a byte is sent
// byte for byte (latin1: "\xEF" is the octet 0xEF, as in the RFC 7208 test suite); any other
// string is sent as UTF-8; a Buffer is sent as is.
import net from 'node:net';
import dns2 from 'dns2';

const { Packet, UDPServer, TCPServer } = dns2;

export type RecordType = 'A' | 'AAAA' | 'TXT' | 'SPF' | 'MX' | 'PTR' | 'CNAME' | 'NS' | 'TLSA';
export type TextData = string | Buffer | (string | Buffer)[];

export type ZoneRecord =
  | { type: 'A' | 'AAAA' | 'PTR' | 'CNAME' | 'NS'; data: string }
  | { type: 'TXT' | 'SPF'; data: TextData }
  | { type: 'MX'; data: { priority: number; exchange: string } }
  | TlsaZoneRecord
  /** Markers, for the types the name has no records of. */
  | { type: 'TIMEOUT' | 'SERVFAIL' | 'MALFORMED' };

/** Owner name → its records. */
export type ZoneData = Readonly<Record<string, readonly ZoneRecord[]>>;

export interface DnsServer {
  readonly address: string;
  readonly port: number;
  /** "127.0.0.1:PORT", as the resolver's `servers` option takes it. */
  readonly server: string;
  /** Questions received so far, as "TYPE name" (for asserting what was, or was not, asked). */
  readonly queries: string[];
  /** Replaces the zone (questions in flight finish with the old one). */
  set(records: ZoneData): void;
  close(): Promise<void>;
}

const MARKERS = new Set(['TIMEOUT', 'SERVFAIL', 'MALFORMED']);
const TYPE_CODES: Record<RecordType, number> = {
  A: Packet.TYPE.A, AAAA: Packet.TYPE.AAAA, TXT: Packet.TYPE.TXT, SPF: Packet.TYPE.SPF, MX: Packet.TYPE.MX,
  PTR: Packet.TYPE.PTR, CNAME: Packet.TYPE.CNAME, NS: Packet.TYPE.NS, TLSA: 52, // dns2 has no TLSA type (RR type 52, RFC 6698); see the TLSA addition below
};
const TYPE_NAMES = new Map<number, RecordType>(Object.entries(TYPE_CODES).map(([k, v]) => [v, k as RecordType]));

const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');

type Outcome =
  | { kind: 'answer'; rcode: number; answers: object[] }
  | { kind: 'silent' }
  | { kind: 'malformed' };

/** Starts the server on 127.0.0.1 (a free port, the same for UDP and TCP). */
export async function startDnsServer(records: ZoneData, opts: { ttl?: number } & DnssecOptions = {}): Promise<DnsServer> {
  const ttl = opts.ttl ?? 60;
  let zone = index(records);
  const queries: string[] = [];

  const handle = (request: InstanceType<typeof Packet>, send: (r: InstanceType<typeof Packet> | Buffer) => Promise<Buffer>) => {
    const q = request.questions[0];
    if (!q) return;
    const typeName = TYPE_NAMES.get(q.type);
    queries.push(`${typeName ?? q.type} ${q.name}`);
    const outcome = resolve(zone, q.name, typeName, ttl);
    if (outcome.kind === 'silent') return;
    if (outcome.kind === 'malformed') {
      void send(malformed(request)).catch(() => {});
      return;
    }
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    response.header.rcode = outcome.rcode;
    if (authenticated(opts, q.name)) (response.header as { ad?: number }).ad = 1; // dns2 writes AD; its typings omit it
    response.answers = outcome.answers as InstanceType<typeof Packet>['answers'];
    void send(response).catch(() => {});
  };

  // TCP first on an ephemeral port, then UDP on the same number (retrying if it is taken).
  for (let attempt = 0; ; attempt++) {
    const sockets = new Set<net.Socket>();
    const tcp = new TCPServer(handle as never);
    // dns2 accepts { idleTimeout } at run time; close() below destroys connections anyway.
    tcp.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    tcp.on('requestError', () => {});
    await new Promise<void>((resolveListen, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, '127.0.0.1', () => resolveListen());
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = new UDPServer({ type: 'udp4' });
    udp.on('request', handle as never);
    udp.on('requestError', () => {});
    const bound = await new Promise<boolean>((resolveBind) => {
      udp.once('error', () => resolveBind(false));
      udp.bind(port, '127.0.0.1', () => resolveBind(true));
    });
    if (!bound) {
      await new Promise<void>((r) => tcp.close(() => r()));
      if (attempt < 10) continue;
      throw new Error('cannot find a free port for UDP and TCP');
    }
    udp.on('error', () => {});
    let closed = false;
    return {
      address: '127.0.0.1',
      port,
      server: `127.0.0.1:${port}`,
      queries,
      set(next: ZoneData) {
        zone = index(next);
      },
      async close() {
        if (closed) return;
        closed = true;
        for (const s of sockets) s.destroy();
        await Promise.all([
          new Promise<void>((r) => tcp.close(() => r())),
          new Promise<void>((r) => udp.close(() => r())),
        ]);
      },
    };
  }
}

type Zone = Map<string, ZoneRecord[]>;

function index(records: ZoneData): Zone {
  const zone: Zone = new Map();
  for (const [name, list] of Object.entries(records)) {
    const key = canonical(name);
    zone.set(key, [...(zone.get(key) ?? []), ...list]);
  }
  return zone;
}

function resolve(zone: Zone, qname: string, type: RecordType | undefined, ttl: number): Outcome {
  const answers: object[] = [];
  const seen = new Set<string>();
  let owner = qname;
  for (let link = 0; link <= 8; link++) {
    const key = canonical(owner);
    const list = zone.get(key);
    if (!list) {
      // Out of the zone after a CNAME: the chain so far. Unknown from the start: NXDOMAIN,
      // unless the name is an empty non-terminal.
      if (answers.length) return { kind: 'answer', rcode: 0, answers };
      const nonTerminal = [...zone.keys()].some((n) => n.endsWith(`.${key}`));
      return { kind: 'answer', rcode: nonTerminal ? 0 : 3, answers };
    }
    const own = type ? list.filter((r) => r.type === type) : [];
    if (own.length) {
      for (const r of own) answers.push(resource(owner, r, ttl));
      return { kind: 'answer', rcode: 0, answers };
    }
    const cname = type !== 'CNAME' ? list.find((r) => r.type === 'CNAME') : undefined;
    if (cname && 'data' in cname && typeof cname.data === 'string') {
      answers.push(resource(owner, cname, ttl));
      seen.add(key);
      owner = cname.data;
      if (seen.has(canonical(owner))) return { kind: 'answer', rcode: 0, answers };
      continue;
    }
    const marker = list.find((r) => MARKERS.has(r.type));
    if (marker?.type === 'TIMEOUT') return { kind: 'silent' };
    if (marker?.type === 'SERVFAIL') return { kind: 'answer', rcode: 2, answers: [] };
    if (marker?.type === 'MALFORMED') return { kind: 'malformed' };
    return { kind: 'answer', rcode: 0, answers };
  }
  return { kind: 'answer', rcode: 0, answers };
}

function resource(name: string, r: ZoneRecord, ttl: number): object {
  const base = { name, type: TYPE_CODES[r.type as RecordType], class: Packet.CLASS.IN, ttl };
  switch (r.type) {
    case 'A':
    case 'AAAA':
      return { ...base, address: r.data };
    case 'PTR':
    case 'CNAME':
      return { ...base, domain: canonical(r.data) };
    case 'NS':
      return { ...base, ns: canonical(r.data) };
    case 'MX':
      return { ...base, exchange: canonical(r.data.exchange), priority: r.data.priority };
    case 'TXT':
    case 'SPF':
      return { ...base, data: characterStrings(r.data) };
    case 'TLSA':
      return { ...base, data: tlsaRdata(r.data) };
    default:
      throw new Error(`not a record: ${r.type}`);
  }
}

function characterStrings(data: TextData): Buffer[] {
  const out: Buffer[] = [];
  for (const item of Array.isArray(data) ? data : [data]) {
    const bytes = Buffer.isBuffer(item) ? item : Buffer.from(item, /^[\x00-\xff]*$/.test(item) ? 'latin1' : 'utf8');
    if (bytes.length === 0) out.push(bytes);
    for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  }
  return out;
}

/** A response whose one answer has an owner name that points at itself (a compression loop). */
function malformed(request: InstanceType<typeof Packet>): Buffer {
  const response = Packet.createResponseFromRequest(request);
  response.header.aa = 1;
  const head = response.toBuffer();
  const self = head.length;
  const out = Buffer.concat([head, Buffer.from([0xc0 | (self >> 8), self & 0xff, 0x00, 0x10, 0x00, 0x01, 0, 0, 0, 60, 0, 2, 1, 0x41])]);
  out.writeUInt16BE(1, 6); // ANCOUNT 1
  return out;
}

// ---- TLSA records and the AD flag (added for outbound TLS: DANE, RFC 7672) ----
// A zone may carry TLSA records ({ type: 'TLSA', data: { usage, selector, matchingType, data } });
// dns2 has no TLSA type, so their RDATA (RFC 6698 s2.1: three octets, then the association data)
// is written raw through dns2's fallback for types it does not know. With `ad` (every answer)
// or `adFor` (the names listed, or a predicate) answers carry the AD bit, as a validating resolver
// sets it for a secure zone; nothing here signs anything, it only plays the validating resolver.

export interface TlsaZoneRecord {
  type: 'TLSA';
  data: { usage: number; selector: number; matchingType: number; data: Buffer };
}

export interface DnssecOptions {
  /** Set the AD bit on every answer. */
  ad?: boolean;
  /** Set the AD bit on answers for these names (case-insensitive) or those the predicate accepts. */
  adFor?: readonly string[] | ((name: string) => boolean);
}

function authenticated(opts: DnssecOptions, name: string): boolean {
  if (opts.ad) return true;
  if (!opts.adFor) return false;
  if (typeof opts.adFor === 'function') return opts.adFor(canonical(name));
  return opts.adFor.some((n) => canonical(n) === canonical(name));
}

function tlsaRdata(t: TlsaZoneRecord['data']): Buffer {
  return Buffer.concat([Buffer.from([t.usage, t.selector, t.matchingType]), t.data]);
}
