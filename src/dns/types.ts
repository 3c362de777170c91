// The resolver interface every check uses (DESIGN.md: one DNS layer for the whole gateway).
// A lookup never throws and never hangs: it ends in an answer, a negative answer, or a
// temporary error the caller scores as "unknown" (STYLE.md rule 9).

export type RRType = 'A' | 'AAAA' | 'TXT' | 'PTR' | 'MX' | 'NS' | 'CNAME';

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
}

export type Lookup<T extends RRType> =
  | { readonly status: 'ok'; readonly records: RecordData[T][]; readonly ttl: number; readonly source: Source }
  /** The name does not exist (RCODE 3). */
  | { readonly status: 'nxdomain'; readonly source: Source }
  /** The name exists but has no record of this type. */
  | { readonly status: 'nodata'; readonly source: Source }
  /** Timeout, SERVFAIL, REFUSED, a malformed answer, or too many queries in flight. */
  | { readonly status: 'error'; readonly reason: string; readonly source: Source };

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
