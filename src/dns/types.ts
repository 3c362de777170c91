// The resolver interface every check uses (DESIGN.md: one DNS layer for the whole gateway).
// A lookup never throws and never hangs: it ends in an answer, a negative answer, or a
// temporary error the caller scores as "unknown" (STYLE.md rule 9).

export type RRType = 'A' | 'AAAA' | 'TXT' | 'PTR' | 'MX' | 'NS' | 'CNAME' | 'TLSA';

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** The record data of each type, as checks consume it. */
export interface RecordData {
  A: string;
  AAAA: string;
  /** The character-strings of one TXT record, in order (SPF joins them without spaces). */
  TXT: string[];
  PTR: string;
  MX: MxRecord;
  NS: string;
  CNAME: string;
  TLSA: TlsaRecord;
}

/** A TLSA record (RFC 6698 s2.1): certificate usage, selector, matching type, association data. */
export interface TlsaRecord {
  readonly usage: number;
  readonly selector: number;
  readonly matchingType: number;
  readonly data: Buffer;
}

export type Lookup<T extends RRType> =
  | {
    readonly status: 'ok'; readonly records: RecordData[T][]; readonly ttl: number; readonly source: Source;
    /**
     * True only when the response carried the AD bit (RFC 4035 s3.2.3) and the configuration
     * declares the resolver validating (`dns.dnssec_validating`); the path to the resolver must be
     * trusted (loopback), since anyone on it could set the bit. DANE (RFC 7672) reads it.
     */
    readonly secure?: boolean;
  }
  /** The name does not exist (RCODE 3). */
  | { readonly status: 'nxdomain'; readonly source: Source }
  /** The name exists but has no record of this type. */
  | { readonly status: 'nodata'; readonly source: Source }
  /** Timeout, SERVFAIL, REFUSED, a malformed answer, or too many queries in flight. */
  | { readonly status: 'error'; readonly code: DnsErrorCode; readonly reason: string; readonly source: Source };

/**
 * Why a lookup failed, for callers that act on the kind (SPF's temperror codes, metrics); the
 * reason beside it is for people. timeout: no answer in time; servfail: the server answered
 * SERVFAIL or another error RCODE; refused: REFUSED; malformed: an answer we cannot read (bad
 * packet, a record running past it, another question); overload: too many of our own queries in
 * flight; network: no route, no server, a socket error; invalid: the name cannot be asked.
 */
export type DnsErrorCode = 'timeout' | 'servfail' | 'refused' | 'malformed' | 'overload' | 'network' | 'invalid';

/** Where the answer came from: the network, the cache, or a local zone mirror. */
export type Source = 'dns' | 'cache' | 'zone';

export interface Resolver {
  lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>>;
}

/** What a local zone mirror answers for a name under its origin (undefined: not ours to answer). */
export interface ZoneAnswerer {
  /** Answers A and TXT queries for names at or below the mirror's origin; undefined for other names. */
  answer(name: string, type: 'A' | 'TXT'): Lookup<'A'> | Lookup<'TXT'> | undefined;
}
