// The milter wire protocol, version 6, as Sendmail's libmilter and Postfix speak it
// (draft-adams-milter-protocol; libmilter/mfdef.h for the codes): every packet is a 4-byte
// big-endian length, then a command byte, then length-1 bytes of data.
//
// Hand-written: the npm registry has no maintained milter server package (`milter` and
// `node-milter` do not exist there; the few milter packages on GitHub are unmaintained
// bindings to libmilter). The codec is small and this way it is bounded where we need it:
//
// - a packet other than a body chunk may hold at most MAX_PACKET (64 KiB) — libmilter's own
//   MILTER_MAX_DATA_SIZE; macros, headers and addresses never need more;
// - a body chunk at most MAX_BODY_PACKET (1 MiB, Sendmail's largest negotiable chunk,
//   SMFIP_MDS_1M); Postfix sends 64 KiB chunks;
// - a length of 0 (no command byte) is malformed.
// A packet over its bound is refused before its data is read: nothing larger is ever held.

/** Commands, MTA → filter (SMFIC_*). */
export const C = {
  ABORT: 'A', BODY: 'B', CONNECT: 'C', MACRO: 'D', BODYEOB: 'E', HELO: 'H', QUIT_NC: 'K',
  HEADER: 'L', MAIL: 'M', EOH: 'N', OPTNEG: 'O', QUIT: 'Q', RCPT: 'R', DATA: 'T', UNKNOWN: 'U',
} as const;

/** Replies and modifications, filter → MTA (SMFIR_*). */
export const Rp = {
  ADDRCPT: '+', DELRCPT: '-', ACCEPT: 'a', REPLBODY: 'b', CONTINUE: 'c', DISCARD: 'd', CHGFROM: 'e',
  ADDHEADER: 'h', INSHEADER: 'i', CHGHEADER: 'm', PROGRESS: 'p', QUARANTINE: 'q', REJECT: 'r',
  TEMPFAIL: 't', REPLYCODE: 'y', OPTNEG: 'O',
} as const;

/** Actions the filter may take (SMFIF_*), negotiated in OPTNEG. */
export const F = {
  ADDHDRS: 0x01, CHGBODY: 0x02, ADDRCPT: 0x04, DELRCPT: 0x08, CHGHDRS: 0x10, QUARANTINE: 0x20,
  CHGFROM: 0x40, ADDRCPT_PAR: 0x80, SETSYMLIST: 0x100,
} as const;

/** Protocol steps (SMFIP_*): what the MTA may leave out, or send without waiting for a reply. */
export const P = {
  NOCONNECT: 0x01, NOHELO: 0x02, NOMAIL: 0x04, NORCPT: 0x08, NOBODY: 0x10, NOHDRS: 0x20, NOEOH: 0x40,
  NR_HDR: 0x80, NOUNKNOWN: 0x100, NODATA: 0x200, SKIP: 0x400, RCPT_REJ: 0x800, NR_CONN: 0x1000,
  NR_HELO: 0x2000, NR_MAIL: 0x4000, NR_RCPT: 0x8000, NR_DATA: 0x10000, NR_UNKN: 0x20000,
  NR_EOH: 0x40000, NR_BODY: 0x80000, HDR_LEADSPC: 0x100000,
} as const;

export const MILTER_VERSION = 6;
export const MAX_PACKET = 64 * 1024;
export const MAX_BODY_PACKET = 1024 * 1024;

export interface Packet {
  readonly cmd: string;
  readonly data: Buffer;
}

/** A violation of the protocol: the connection is closed (there is no error reply in milter). */
export class MilterProtocolError extends Error {}

/**
 * Splits the byte stream into packets. Holds at most one incomplete packet (within its bound)
 * plus what a single read delivered.
 */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);

  /** The complete packets in what arrived so far; throws MilterProtocolError on a bad length. */
  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Packet[] = [];
    for (;;) {
      if (this.buf.length < 5) {
        if (this.buf.length >= 4 && this.buf.readUInt32BE(0) === 0) throw new MilterProtocolError('packet of length 0');
        break;
      }
      const len = this.buf.readUInt32BE(0);
      if (len === 0) throw new MilterProtocolError('packet of length 0');
      const cmd = String.fromCharCode(this.buf[4]!);
      const max = cmd === C.BODY ? MAX_BODY_PACKET : MAX_PACKET;
      if (len - 1 > max) throw new MilterProtocolError(`packet '${printableCmd(cmd)}' of ${len - 1} bytes is over the limit of ${max}`);
      if (this.buf.length < 4 + len) break;
      out.push({ cmd, data: this.buf.subarray(5, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    if (!this.buf.length) this.buf = Buffer.alloc(0);
    return out;
  }

  /** Bytes of an incomplete packet held (a client that vanished mid-packet). */
  get pending(): number {
    return this.buf.length;
  }
}

export const printableCmd = (cmd: string) => (/^[\x21-\x7e]$/.test(cmd) ? cmd : `0x${cmd.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** One packet on the wire. */
export function encode(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = cmd.charCodeAt(0);
  return Buffer.concat([head, data]);
}

/** NUL-terminated strings, concatenated (latin1: bytes kept 1:1). */
export function cstrings(...parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => `${p}\0`).join(''), 'latin1');
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

/** The NUL-terminated strings of a packet's data; a last string without its NUL is malformed. */
export function splitStrings(data: Buffer, what: string): string[] {
  if (!data.length) return [];
  if (data[data.length - 1] !== 0) throw new MilterProtocolError(`${what}: data does not end with NUL`);
  return data.subarray(0, data.length - 1).toString('latin1').split('\0');
}

export interface OptNeg {
  readonly version: number;
  readonly actions: number;
  readonly protocol: number;
}

export function parseOptNeg(data: Buffer): OptNeg {
  // Version 2 MTAs send the three words too; anything shorter is not a negotiation.
  if (data.length < 12) throw new MilterProtocolError(`OPTNEG of ${data.length} bytes (12 expected)`);
  return { version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
}

export const optNegReply = (o: OptNeg) => encode(Rp.OPTNEG, Buffer.concat([u32(o.version), u32(o.actions), u32(o.protocol)]));

export interface ConnectInfo {
  readonly hostname: string;
  /** '4', '6', 'L' (unix socket) or 'U' (unknown: no address follows). */
  readonly family: string;
  readonly port: number;
  readonly address: string;
}

export function parseConnect(data: Buffer): ConnectInfo {
  const nul = data.indexOf(0);
  if (nul < 0 || nul + 1 >= data.length) throw new MilterProtocolError('CONNECT: no host name or family');
  const hostname = data.subarray(0, nul).toString('latin1');
  const family = String.fromCharCode(data[nul + 1]!);
  if (family === 'U') return { hostname, family, port: 0, address: '' };
  if (!'46L'.includes(family)) throw new MilterProtocolError(`CONNECT: unknown address family '${printableCmd(family)}'`);
  if (data.length < nul + 5) throw new MilterProtocolError('CONNECT: truncated');
  const port = data.readUInt16BE(nul + 2);
  const rest = data.subarray(nul + 4);
  const [address] = splitStrings(rest, 'CONNECT');
  return { hostname, family, port, address: address ?? '' };
}

/** MACRO: the command it belongs to, then name/value pairs ("{client_addr}" written either way). */
export function parseMacros(data: Buffer): { forCmd: string; macros: [string, string][] } {
  if (!data.length) throw new MilterProtocolError('MACRO: empty');
  const forCmd = String.fromCharCode(data[0]!);
  const strings = splitStrings(data.subarray(1), 'MACRO');
  if (strings.length % 2) throw new MilterProtocolError('MACRO: a name without a value');
  const macros: [string, string][] = [];
  for (let i = 0; i < strings.length; i += 2) macros.push([strings[i]!.replace(/^\{(.*)\}$/, '$1'), strings[i + 1]!]);
  return { forCmd, macros };
}

export function parseHeader(data: Buffer): { name: string; value: string } {
  const s = splitStrings(data, 'HEADER');
  if (s.length !== 2 || !s[0]) throw new MilterProtocolError('HEADER: not a name and a value');
  return { name: s[0], value: s[1]! };
}

/** The address of MAIL or RCPT ("<a@b>" or "a@b"), without its angle brackets. */
export function envelopeAddress(data: Buffer, what: string): string {
  const [first] = splitStrings(data, what);
  if (first === undefined) throw new MilterProtocolError(`${what}: no address`);
  return first.trim().replace(/^<(.*)>$/, '$1');
}

// ---- replies and modifications -------------------------------------------------------------

export const reply = {
  continue: () => encode(Rp.CONTINUE),
  accept: () => encode(Rp.ACCEPT),
  discard: () => encode(Rp.DISCARD),
  tempfail: () => encode(Rp.TEMPFAIL),
  /** "550 5.7.1 text" (several lines: "550-5.7.1 a\r\n550 5.7.1 b"). */
  replyCode: (text: string) => encode(Rp.REPLYCODE, cstrings(text)),
  addHeader: (name: string, value: string) => encode(Rp.ADDHEADER, cstrings(name, value)),
  insHeader: (index: number, name: string, value: string) => encode(Rp.INSHEADER, Buffer.concat([u32(index), cstrings(name, value)])),
  /** `index`: the name's occurrence, from 1; an empty value removes the field. */
  chgHeader: (index: number, name: string, value: string) => encode(Rp.CHGHEADER, Buffer.concat([u32(index), cstrings(name, value)])),
  replBody: (chunk: Buffer) => encode(Rp.REPLBODY, chunk),
  quarantine: (reason: string) => encode(Rp.QUARANTINE, cstrings(reason)),
};
