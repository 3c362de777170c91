// Serves the local zone mirrors over DNS (UDP and TCP) so that other hosts can use them, the way
// rbldnsd serves its zones: A and TXT for listed names, NXDOMAIN for names under a zone that are
// not listed, NODATA for other types, SOA/NS at the zone's origin when the file gives them
// ($SOA, $NS), REFUSED outside every zone. Garbage never crashes it: a packet too short to
// carry an id is dropped, one that does not decode gets FORMERR, responses are never answered.
// Packets are decoded and encoded by dns-packet.
import dgram from 'node:dgram';
import net from 'node:net';
import packet from 'dns-packet';
import type { Logger } from '../log.js';
import type { LoadedZone } from './zones/zone.js';
import { relativeName } from './zones/zone-mirror.js';

/** A zone as the server needs it (ZoneMirror). */
export interface ServedZone {
  readonly origin: string;
  snapshot(): LoadedZone | undefined;
}

/** The mirrors to serve (ZoneSet): the zone a name belongs to. */
export interface ServedZones {
  find(name: string): ServedZone | undefined;
}

export interface ZoneServerAddress {
  readonly address: string;
  readonly port: number;
}

export interface ZoneServer {
  close(): Promise<void>;
  address(): ZoneServerAddress;
}

/** dns-packet's name codec (exported by the package, absent from its type declarations). */
const nameCodec = (packet as unknown as { name: { encode(name: string): Buffer } }).name;

const QR = 0x8000;
const OPCODE = 0x7800;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;

const NOERROR = 0;
const FORMERR = 1;
const SERVFAIL = 2;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;

const T_A = 1;
const T_NS = 2;
const T_SOA = 6;
const T_TXT = 16;
const T_ANY = 255;
const C_IN = 1;
const C_ANY = 255;

/** Plain DNS over UDP (RFC 1035); a larger EDNS size is honoured up to this. */
const UDP_MIN = 512;
const UDP_MAX = 4096;
const TCP_MAX = 65535;
const TCP_IDLE_MS = 10_000;
const TCP_MAX_CONNECTIONS = 256;

/** A reply carrying only the header (when the question cannot be echoed faithfully). */
function headerOnly(query: Buffer, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(query.readUInt16BE(0), 0);
  const qflags = query.readUInt16BE(2);
  b.writeUInt16BE(QR | (qflags & OPCODE) | (qflags & RD) | rcode, 2);
  return b;
}

/**
 * The reply to one query packet, or undefined when none must be sent (not a query, or too short
 * to carry an id). `tcp`: no 512-byte limit. `now`: ms since the epoch (data expiry).
 */
export function answerQuery(query: Buffer, zones: ServedZones, opts: { tcp?: boolean; now?: number } = {}): Buffer | undefined {
  if (query.length < 12) return undefined;
  const qflags = query.readUInt16BE(2);
  // Never answer a response: two servers must not be able to ping-pong forever.
  if (qflags & QR) return undefined;
  // As rbldnsd: other opcodes, and AA or TC set in a query, are not implemented.
  if (qflags & (OPCODE | AA | TC)) return headerOnly(query, NOTIMP);
  if (query.readUInt16BE(4) !== 1) return headerOnly(query, FORMERR);
  // Only the header and the question are decoded (other sections are ignored, as by rbldnsd):
  // dns-packet, given the counts of a garbage packet, allocates and walks up to 65535 records
  // per section before it fails — a millisecond per packet, an easy way to load the server.
  const head = Buffer.from(query);
  head.writeUInt32BE(0, 6);
  head.writeUInt16BE(0, 10);
  let req: packet.DecodedPacket;
  try {
    req = packet.decode(head);
  } catch {
    return headerOnly(query, FORMERR);
  }
  if (req.questions?.length !== 1) return headerOnly(query, FORMERR);
  const q = req.questions[0];
  // dns-packet decodes labels as UTF-8 and joins them with dots: a name it cannot give back
  // byte for byte (binary labels, a dot inside a label, compression in the question) is refused
  // as malformed rather than answered for another name.
  let qname: Buffer;
  try {
    qname = nameCodec.encode(q.name);
  } catch {
    return headerOnly(query, FORMERR);
  }
  if (!qname.equals(query.subarray(12, 12 + qname.length))) return headerOnly(query, FORMERR);
  const qtype = query.readUInt16BE(12 + qname.length);
  const qclass = query.readUInt16BE(12 + qname.length + 2);

  const limit = opts.tcp ? TCP_MAX : udpLimit(query);
  const reply = (rcode: number, aa: boolean, answers: packet.Answer[] = [], authorities: packet.Answer[] = []): Buffer => {
    const flags = (aa ? AA : 0) | (qflags & RD) | rcode;
    let out = packet.encode({ type: 'response', id: req.id, flags, questions: [q], answers, authorities });
    // Too big for this transport: the client asks again over TCP.
    if (out.length > limit) out = packet.encode({ type: 'response', id: req.id, flags: flags | TC, questions: [q] });
    // The question goes back exactly as it came (dns-packet writes an unknown class as 0).
    query.copy(out, 12, 12, 12 + qname.length + 4);
    return out;
  };

  if (qclass !== C_IN && qclass !== C_ANY) return reply(REFUSED, false);
  // TSIG, IXFR, AXFR, MAILB, MAILA: no zone transfers (rsync the files instead, as rbldnsd says).
  if (qtype >= 250 && qtype !== T_ANY) return reply(NOTIMP, false);
  const aa = qclass === C_IN;

  const zone = zones.find(q.name);
  if (!zone) return reply(REFUSED, false);
  const z = zone.snapshot();
  if (!z || z.expired(opts.now ?? Date.now())) return reply(SERVFAIL, false);
  const rel = relativeName(q.name, zone.origin) ?? '';
  const origin = zone.origin;
  const answers: packet.Answer[] = [];

  if (rel === '') {
    // The origin: SOA and NS when the file gives them, nothing else listed there.
    if (qtype === T_SOA || qtype === T_ANY) {
      if (!z.soa) return reply(REFUSED, false);
      answers.push(soaRecord(q.name, z, z.soa.ttl));
    }
    if (qtype === T_NS || qtype === T_ANY) {
      if (!z.ns) return reply(REFUSED, false);
      answers.push(...nsRecords(q.name, z));
    }
  } else {
    const hit = z.lookup(rel);
    if (!hit) return reply(NXDOMAIN, aa, [], z.soa ? [soaRecord(origin, z, z.soa.minimum)] : []);
    if (qtype === T_A || qtype === T_ANY) {
      for (const a of z.aRecords(hit)) answers.push({ name: q.name, type: 'A', class: 'IN', ttl: z.ttl, data: a });
    }
    if (qtype === T_TXT || qtype === T_ANY) {
      for (const t of z.txtRecords(hit)) answers.push({ name: q.name, type: 'TXT', class: 'IN', ttl: z.ttl, data: [Buffer.from(t, 'latin1')] });
    }
  }
  // As rbldnsd (without -a): NS records with positive answers, the SOA with empty ones.
  if (!answers.length) return reply(NOERROR, aa, [], z.soa ? [soaRecord(origin, z, z.soa.minimum)] : []);
  return reply(NOERROR, aa, answers, z.ns ? nsRecords(origin, z) : []);
}

/** The UDP size the client accepts: 512, or more when it sent an EDNS OPT record (RFC 6891). */
function udpLimit(query: Buffer): number {
  // A plain EDNS query carries the OPT record as its only extra record.
  if (query.readUInt32BE(6) !== 0 || query.readUInt16BE(10) !== 1) return UDP_MIN;
  let size = UDP_MIN;
  try {
    const opt = packet.decode(query).additionals?.find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    size = opt?.udpPayloadSize ?? UDP_MIN;
  } catch {
    // A broken OPT record: plain DNS.
  }
  return Math.min(Math.max(size, UDP_MIN), UDP_MAX);
}

function soaRecord(name: string, z: LoadedZone, ttl: number): packet.Answer {
  const s = z.soa!;
  return {
    name, type: 'SOA', class: 'IN', ttl,
    data: { mname: s.mname, rname: s.rname, serial: s.serial, refresh: s.refresh, retry: s.retry, expire: s.expire, minimum: s.minimum },
  };
}

function nsRecords(name: string, z: LoadedZone): packet.Answer[] {
  return z.ns!.names.map((ns) => ({ name, type: 'NS', class: 'IN', ttl: z.ns!.ttl, data: ns }));
}

/** Serves `zones` on address:port, UDP and TCP (port 0: any free port, the same for both). */
export async function startZoneServer(zones: ServedZones, opts: ZoneServerAddress, logger: Logger): Promise<ZoneServer> {
  const serve = (msg: Buffer, tcp: boolean): Buffer | undefined => {
    try {
      return answerQuery(msg, zones, { tcp });
    } catch (err) {
      // A bug here must cost one SERVFAIL, not the server.
      logger.error({ event: 'zone_server_error', err: (err as Error).message }, 'zone server: cannot answer a query');
      return msg.length >= 12 ? headerOnly(msg, SERVFAIL) : undefined;
    }
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port === 0 ? 5 : 1); attempt++) {
    const udp = dgram.createSocket(net.isIPv6(opts.address) ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(opts.port, opts.address, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    const port = udp.address().port;
    const sockets = new Set<net.Socket>();
    const tcp = net.createServer((sock) => serveTcp(sock, sockets, serve));
    tcp.maxConnections = TCP_MAX_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, opts.address, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      // With port 0 the TCP side of the UDP port may be taken: try another port.
      udp.close();
      lastError = err;
      continue;
    }
    udp.on('message', (msg, rinfo) => {
      const res = serve(msg, false);
      if (res) udp.send(res, rinfo.port, rinfo.address);
    });
    udp.on('error', (err) => logger.error({ event: 'zone_server_error', err: err.message }, 'zone server UDP error'));
    tcp.on('error', (err) => logger.error({ event: 'zone_server_error', err: err.message }, 'zone server TCP error'));
    logger.info({ event: 'zone_server_listening', address: opts.address, port }, `serving the zone mirrors on ${opts.address} port ${port} (UDP and TCP)`);
    return {
      address: () => ({ address: opts.address, port }),
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => tcp.close(() => resolve())),
        ]);
      },
    };
  }
  throw lastError instanceof Error ? lastError : new Error('zone server: no free port');
}

/** DNS over TCP: messages prefixed by their 2-byte length, several per connection. */
function serveTcp(sock: net.Socket, sockets: Set<net.Socket>, serve: (msg: Buffer, tcp: boolean) => Buffer | undefined): void {
  sockets.add(sock);
  sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
  sock.on('close', () => sockets.delete(sock));
  sock.on('error', () => sock.destroy());
  let pending: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0);
      if (pending.length < 2 + len) return;
      const msg = pending.subarray(2, 2 + len);
      pending = pending.subarray(2 + len);
      const res = serve(msg, true);
      // Something that is not a query (or is shorter than a header): end the conversation.
      if (!res) {
        sock.destroy();
        return;
      }
      const framed = Buffer.alloc(2 + res.length);
      framed.writeUInt16BE(res.length, 0);
      res.copy(framed, 2);
      sock.write(framed);
    }
  });
}
