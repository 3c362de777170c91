// Shared by the checks' unit tests: an in-memory resolver and connection facts. (Integration
// tests use the real resolver against real DNS servers on loopback instead.)
import type { ConnectionFacts } from '../pipeline/types.js';
import type { Lookup, RecordData, Resolver, RRType } from '../dns/types.js';

/** "TYPE name" → records, or a failure to act out; any other question is NXDOMAIN. */
export type FakeZone = Record<string, unknown[] | 'error' | 'nodata' | 'hang' | 'throw'>;

export class FakeResolver implements Resolver {
  /** "TYPE name" of every question, in order. */
  readonly queries: string[] = [];
  constructor(private readonly zone: FakeZone, private readonly delayMs = 0) {}
  async lookup<T extends RRType>(name: string, type: T): Promise<Lookup<T>> {
    const key = `${type} ${name.toLowerCase()}`;
    this.queries.push(key);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const v = this.zone[key];
    if (v === undefined) return { status: 'nxdomain', source: 'dns' };
    if (v === 'hang') return new Promise<never>(() => {});
    if (v === 'throw') throw new Error('resolver bug');
    if (v === 'error') return { status: 'error', reason: 'timed out after 2 attempts', source: 'dns' };
    if (v === 'nodata') return { status: 'nodata', source: 'dns' };
    return { status: 'ok', records: v as RecordData[T][], ttl: 300, source: 'dns' };
  }
}

/** Facts of an untrusted client on an mx listener; override what a test is about. */
export function conn(over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    sessionId: 's1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 40000,
    localAddress: '198.51.100.1', localPort: 25, trustedNetwork: false, esmtp: true, ...over,
  };
}
