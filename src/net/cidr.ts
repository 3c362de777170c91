// CIDR matching on Node's own net.BlockList, which understands IPv4, IPv6 and
// IPv4-mapped IPv6 addresses ("::ffff:192.0.2.1") without a library.
import net from 'node:net';

export function isValidCidr(text: string): boolean {
  const [addr, bits, extra] = text.split('/');
  if (extra !== undefined || !addr) return false;
  const family = net.isIP(addr);
  if (!family) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** A set of networks that answers "is this client address inside?". */
export class NetworkSet {
  private readonly list = new net.BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/') as [string, string | undefined];
      const type = net.isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
    this.size = cidrs.length;
  }

  has(address: string): boolean {
    if (this.size === 0) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const plain = mapped ? mapped[1]! : address;
    const family = net.isIP(plain);
    if (!family) return false;
    return this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** The address a client connected from, IPv4-mapped IPv6 reduced to IPv4. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  return mapped ? mapped[1]! : remote;
}

/** The network of an address as "base/prefix": /24 and /64 by default (the usual client granularity). */
export function networkOf(ip: string, v4Prefix = 24, v6Prefix = 64): string {
  if (net.isIPv4(ip)) {
    const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const size = 2 ** (32 - v4Prefix);
    const base = Math.floor(n / size) * size;
    return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join('.')}/${v4Prefix}`;
  }
  if (net.isIPv6(ip)) {
    const groups = expandIPv6(ip).map((g) => parseInt(g, 16));
    const masked = groups.map((g, k) => {
      const bits = Math.max(0, Math.min(16, v6Prefix - k * 16));
      return bits === 16 ? g : bits === 0 ? 0 : g & (0xffff << (16 - bits)) & 0xffff;
    });
    // Compressed form: trailing zero groups become "::".
    let end = 8;
    while (end > 0 && masked[end - 1] === 0) end--;
    const head = masked.slice(0, end).map((g) => g.toString(16)).join(':');
    return `${head}${end < 8 ? '::' : ''}/${v6Prefix}`;
  }
  return ip;
}

/** The eight groups of an IPv6 address (an embedded IPv4 tail converted). */
function expandIPv6(ip: string): string[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t];
}
