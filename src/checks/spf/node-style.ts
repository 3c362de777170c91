// Our Resolver seen through the signature of node:dns `promises.resolve(name, rrtype)`, which is
// what mailauth takes as its `resolver` option: an array of records on success, an Error with a
// node:dns `code` otherwise. The gateway keeps one DNS layer (DESIGN.md), so mailauth never
// opens a socket of its own.
//
// Mapping (what mailauth does with each code in parentheses):
//   ok        → records: TXT as arrays of character-strings (mailauth joins them without
//               spaces, RFC 7208 s3.3), MX as { exchange, priority }, the others as strings;
//               names without a trailing dot, the root as "" (a null MX), as c-ares gives them
//   nxdomain  → ENOTFOUND   (a "void lookup" for SPF)
//   nodata    → ENODATA     (a "void lookup" for SPF)
//   error     → ETIMEOUT for timeouts, ESERVFAIL for SERVFAIL, EREFUSED for REFUSED,
//               EBADRESP for malformed answers, ECONNREFUSED when the server is unreachable,
//               ESERVFAIL for anything else (SPF: temperror)
// A name that cannot exist in the DNS (an empty label, a label over 63 octets, over 253
// octets in all) is ENOTFOUND without a query: RFC 7208 s4.3 and the RFC 7208 test suite treat
// such a target as non-existent, not as a temporary failure.
import type { DnsErrorCode as ResolverErrorCode, Lookup, RRType, Resolver } from '../../dns/types.js';

/** The shape of node:dns `promises.resolve` that mailauth calls. */
export type NodeStyleResolve = (name: string, rrtype: string) => Promise<unknown[]>;

export type DnsErrorCode = 'ENOTFOUND' | 'ENODATA' | 'ETIMEOUT' | 'ESERVFAIL' | 'EREFUSED' | 'EBADRESP' | 'ECONNREFUSED' | 'ENOTIMP';

export interface DnsError extends Error {
  code: DnsErrorCode;
  hostname: string;
  syscall: string;
}

const SUPPORTED = new Set<string>(['A', 'AAAA', 'TXT', 'PTR', 'MX', 'NS', 'CNAME']);

/**
 * Builds an Error as node:dns does ("queryTxt ENOTFOUND example.org"), without a stack trace:
 * mailauth reads only its code, and every NXDOMAIN and NODATA answer makes one (capturing the
 * stack was a tenth of the SPF check's CPU).
 */
export function dnsError(code: DnsErrorCode, name: string, rrtype: string, detail?: string): DnsError {
  const syscall = `query${rrtype.charAt(0)}${rrtype.slice(1).toLowerCase()}`;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const err = new Error(`${syscall} ${code} ${name}${detail ? ` (${detail})` : ''}`) as DnsError;
  Error.stackTraceLimit = limit;
  err.code = code;
  err.hostname = name;
  err.syscall = syscall;
  return err;
}

/** The node:dns code for a resolver error (mailauth tells temperrors from the rest by it). */
export function errorCode(code: ResolverErrorCode): DnsErrorCode {
  switch (code) {
    case 'timeout': return 'ETIMEOUT';
    case 'refused': return 'EREFUSED';
    case 'malformed': return 'EBADRESP';
    case 'network': return 'ECONNREFUSED';
    default: return 'ESERVFAIL';
  }
}

/** True when `name` (without a trailing dot) can be asked at all: labels 1..63 octets, 253 in all. */
export function isQueryableName(name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (!n || n.length > 253) return false;
  return n.split('.').every((label) => label.length > 0 && label.length <= 63);
}

export function nodeStyleResolver(resolver: Resolver): NodeStyleResolve {
  return async (name, rrtype) => {
    const type = String(rrtype).toUpperCase();
    if (!SUPPORTED.has(type)) throw dnsError('ENOTIMP', name, type, 'record type not supported by the gateway resolver');
    if (!isQueryableName(name)) throw dnsError('ENOTFOUND', name, type, 'not a valid DNS name');
    const lookup = (await resolver.lookup(name, type as RRType)) as Lookup<RRType>;
    switch (lookup.status) {
      case 'ok':
        return lookup.records.map((r) => toNode(type, r));
      case 'nxdomain':
        throw dnsError('ENOTFOUND', name, type);
      case 'nodata':
        throw dnsError('ENODATA', name, type);
      case 'error':
        throw dnsError(errorCode(lookup.code), name, type, lookup.reason);
    }
  };
}

/**
 * One record as node:dns gives it. Copies (mailauth sorts MX arrays in place; the resolver's
 * cache must not change), and names without the trailing dot, as c-ares returns them: the root
 * (a null MX, RFC 7505 "MX 0 .") is "", which mailauth skips instead of asking for ".".
 */
function toNode(type: string, r: unknown): unknown {
  const bare = (n: string) => n.replace(/\.$/, '');
  if (Array.isArray(r)) return [...r];
  if (type === 'MX') {
    const mx = r as { exchange: string; priority: number };
    return { exchange: bare(mx.exchange), priority: mx.priority };
  }
  if (type === 'PTR' || type === 'CNAME' || type === 'NS') return bare(String(r));
  return r;
}
