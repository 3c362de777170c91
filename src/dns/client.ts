// A stub resolver client: one question to a list of recursive servers over UDP, falling back
// to TCP when the answer is truncated. Packets are encoded and decoded by dns-packet.
//
// Why not node:dns (c-ares): it hides TTLs for every type but A/AAAA, so a cache that honours
// TTLs (the requirement) cannot be built on it; it cannot tell NXDOMAIN from NODATA
// reliably across types, and its per-query timeout cannot be bounded per caller. A query here
// is a few dozen lines over dgram/net with the packet format left to the library.
import dgram from 'node:dgram';
import net from 'node:net';
import crypto from 'node:crypto';
import packet from 'dns-packet';
import type { DnsErrorCode, MxRecord, RRType, TlsaRecord } from './types.js';

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1" → host and port. */
export function parseServer(spec: string): ServerAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : 53 };
  if (net.isIPv6(spec)) return { host: spec, port: 53 };
  const m = /^([^:]+)(?::(\d+))?$/.exec(spec);
  if (!m || !net.isIP(m[1]!)) throw new Error(`"${spec}" is not an IP address with an optional port`);
  return { host: m[1]!, port: m[2] ? Number(m[2]) : 53 };
}

/** The outcome of one exchange, before caching; records already filtered to the question. */
export type Answer =
  | { status: 'ok'; records: unknown[]; ttl: number; ad: boolean }
  | { status: 'nxdomain' | 'nodata'; ttl: number | undefined }
  | { status: 'error'; code: DnsErrorCode; reason: string };

export interface QueryOptions {
  readonly servers: readonly ServerAddress[];
  readonly timeoutMs: number;
  readonly attempts: number;
  /**
   * Ask for DNSSEC status: the AD bit in the query header (RFC 6840 s5.7: a validating resolver
   * then reports AD in its answer) and the DO bit in EDNS0, since some resolvers set AD only then.
   */
  readonly dnssec?: boolean;
}

/** Largest UDP answer we accept (EDNS0 advertised size); bigger answers come over TCP. */
const UDP_PAYLOAD = 1232;
/** DNS over TCP caps a message at 64 KiB; we never buffer more. */
const TCP_MAX = 65_535 + 2;

/**
 * Asks the servers in turn (attempts × servers tries at most) until one gives a usable answer.
 * SERVFAIL, REFUSED, timeouts and malformed packets move on to the next try.
 */
export async function query(name: string, type: RRType, opts: QueryOptions): Promise<Answer> {
  let last: Answer = { status: 'error', code: 'network', reason: 'no DNS server configured' };
  for (let attempt = 0; attempt < opts.attempts; attempt++) {
    for (const server of opts.servers) {
      last = await exchange(name, type, server, opts.timeoutMs, opts.dnssec ?? false);
      if (last.status !== 'error') return last;
    }
  }
  return last;
}

async function exchange(name: string, type: RRType, server: ServerAddress, timeoutMs: number, dnssec: boolean): Promise<Answer> {
  const id = crypto.randomInt(0, 65_536);
  const request = packet.encode({
    type: 'query', id, flags: packet.RECURSION_DESIRED | (dnssec ? packet.AUTHENTIC_DATA : 0),
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: UDP_PAYLOAD, flags: dnssec ? packet.DNSSEC_OK : 0 } as packet.Answer],
  });
  let raw: Buffer;
  try {
    raw = await udpExchange(request, id, server, timeoutMs);
  } catch (err) {
    return { status: 'error', code: socketErrorCode(err), reason: `${server.host}:${server.port}: ${(err as Error).message}` };
  }
  let decoded = decode(raw);
  if (decoded && ((decoded.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0) {
    try {
      // Over TCP the OPT record stays when DNSSEC status is asked for (the DO bit lives there).
      const again = packet.decode(request);
      raw = await tcpExchange(packet.streamEncode(dnssec ? again : { ...again, additionals: [] }), server, timeoutMs);
      decoded = decode(raw.subarray(2));
    } catch (err) {
      return { status: 'error', code: socketErrorCode(err), reason: `${server.host}:${server.port} (tcp): ${(err as Error).message}` };
    }
  }
  if (!decoded) return { status: 'error', code: 'malformed', reason: `${server.host}:${server.port}: malformed answer` };
  return interpret(decoded, id, name, type, server);
}

function decode(raw: Buffer): packet.Packet | undefined {
  if (!recordsFit(raw)) return undefined;
  try {
    return packet.decode(raw);
  } catch {
    return undefined;
  }
}

/**
 * True when every question and record of the message lies inside it. dns-packet reads a record
 * whose RDLENGTH runs past the end of the packet as a shorter one (a slice clamps), so such an
 * answer would be trusted with data that is not there; it is malformed (RFC 1035 s4.1.3).
 */
export function recordsFit(buf: Buffer): boolean {
  if (buf.length < 12) return false;
  let off = 12;
  // A name: labels up to a zero label, or a compression pointer (two bytes) that ends it.
  const skipName = (): boolean => {
    for (;;) {
      if (off >= buf.length) return false;
      const len = buf[off]!;
      if ((len & 0xc0) === 0xc0) {
        off += 2;
        return off <= buf.length;
      }
      if (len & 0xc0) return false;
      off += 1 + len;
      if (len === 0) return true;
    }
  };
  for (let i = buf.readUInt16BE(4); i > 0; i--) {
    if (!skipName()) return false;
    off += 4;
    if (off > buf.length) return false;
  }
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = records; i > 0; i--) {
    if (!skipName() || off + 10 > buf.length) return false;
    off += 10 + buf.readUInt16BE(off + 8);
    if (off > buf.length) return false;
  }
  return true;
}

/** The kind of a socket failure: our own timer, or the network. */
function socketErrorCode(err: unknown): DnsErrorCode {
  return err instanceof DnsTimeout ? 'timeout' : 'network';
}

class DnsTimeout extends Error {}

/** Turns a response into an Answer: checks it answers our question, follows CNAMEs inside it. */
export function interpret(res: packet.Packet, id: number, name: string, type: RRType, server: ServerAddress): Answer {
  const where = `${server.host}:${server.port}`;
  const q = res.questions?.[0];
  if (res.id !== id || !q || q.name.toLowerCase() !== name.toLowerCase() || q.type !== type) {
    return { status: 'error', code: 'malformed', reason: `${where}: answer does not match the question` };
  }
  // dns-packet's decoder adds `rcode` (its types omit it).
  const rcode = (res as packet.Packet & { rcode?: string }).rcode ?? 'NOERROR';
  if (rcode === 'NXDOMAIN') return { status: 'nxdomain', ttl: negativeTtl(res) };
  if (rcode !== 'NOERROR') return { status: 'error', code: rcode === 'REFUSED' ? 'refused' : 'servfail', reason: `${where}: ${rcode}` };
  // Follow the CNAME chain within the answer section (a recursive server includes it).
  const owners = new Set([name.toLowerCase()]);
  const answers = res.answers ?? [];
  for (let changed = true; changed;) {
    changed = false;
    for (const a of answers) {
      if (a.type === 'CNAME' && owners.has(a.name.toLowerCase()) && !owners.has(String(a.data).toLowerCase())) {
        owners.add(String(a.data).toLowerCase());
        changed = true;
      }
    }
  }
  const relevant = answers.filter((a) => a.type === type && owners.has(a.name.toLowerCase()));
  if (!relevant.length) return { status: 'nodata', ttl: negativeTtl(res) };
  const records: unknown[] = [];
  let ttl = Infinity;
  for (const a of relevant) {
    const data = recordData(type, a);
    if (data === undefined) return { status: 'error', code: 'malformed', reason: `${where}: malformed ${type} record` };
    records.push(data);
    ttl = Math.min(ttl, (a as { ttl?: number }).ttl ?? 0);
  }
  return { status: 'ok', records, ttl, ad: ((res.flags ?? 0) & packet.AUTHENTIC_DATA) !== 0 };
}

function recordData(type: RRType, a: packet.Answer): unknown {
  const data = (a as { data?: unknown }).data;
  switch (type) {
    case 'A':
    case 'AAAA':
    case 'PTR':
    case 'NS':
    case 'CNAME':
      return typeof data === 'string' ? data : undefined;
    case 'TXT': {
      const chunks = Array.isArray(data) ? data : [data];
      if (!chunks.every((c) => Buffer.isBuffer(c) || typeof c === 'string')) return undefined;
      return chunks.map((c) => (Buffer.isBuffer(c) ? c.toString('latin1') : c));
    }
    case 'TLSA': {
      const t = data as { usage?: unknown; selector?: unknown; matchingType?: unknown; certificate?: unknown } | undefined;
      if (typeof t?.usage !== 'number' || typeof t.selector !== 'number' || typeof t.matchingType !== 'number' || !Buffer.isBuffer(t.certificate)) return undefined;
      return { usage: t.usage, selector: t.selector, matchingType: t.matchingType, data: Buffer.from(t.certificate) } satisfies TlsaRecord;
    }
    case 'MX': {
      const mx = data as { exchange?: unknown; preference?: unknown } | undefined;
      if (typeof mx?.exchange !== 'string' || typeof mx.preference !== 'number') return undefined;
      return { exchange: mx.exchange, priority: mx.preference } satisfies MxRecord;
    }
  }
}

/** RFC 2308 s5: a negative answer lives min(SOA TTL, SOA MINIMUM); undefined without an SOA. */
function negativeTtl(res: packet.Packet): number | undefined {
  const soa = res.authorities?.find((a) => a.type === 'SOA') as { ttl?: number; data?: { minimum?: number } } | undefined;
  if (!soa) return undefined;
  return Math.min(soa.ttl ?? 0, soa.data?.minimum ?? 0);
}

function udpExchange(request: Buffer, id: number, server: ServerAddress, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A socket per query: a fresh random source port for every question (RFC 5452), and an
    // answer can only come back on the socket that asked.
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let finished = false;
    const done = (err: Error | undefined, msg?: Buffer) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => done(new DnsTimeout(`timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => done(err));
    socket.on('message', (msg, rinfo) => {
      // Only the server asked, and only our id: anything else is ignored, not trusted.
      if (rinfo.port !== server.port || msg.length < 12 || msg.readUInt16BE(0) !== id) return;
      done(undefined, msg);
    });
    // A connected socket: the kernel drops datagrams from other peers, and a closed port is
    // reported at once (ICMP unreachable → ECONNREFUSED) instead of waiting for the timeout.
    socket.connect(server.port, server.host, () => {
      socket.send(request, (err) => {
        if (err) done(err);
      });
    });
  });
}

function tcpExchange(request: Buffer, server: ServerAddress, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (err: Error | undefined, msg?: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(msg!);
    };
    const timer = setTimeout(() => done(new DnsTimeout(`timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => done(err));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length > TCP_MAX) return done(new Error('answer too large'));
      const all = Buffer.concat(chunks);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) done(undefined, all.subarray(0, 2 + all.readUInt16BE(0)));
    });
    socket.on('end', () => done(new Error('connection closed before a full answer')));
  });
}
