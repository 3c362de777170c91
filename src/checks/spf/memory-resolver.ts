// A Resolver that answers from a map in memory, for the unit tests of the SPF checks (the
// conformance suite and the robustness tests use the real resolver against a DNS server on
// loopback instead: test/helpers/dns-server.ts).
import type { Lookup, RecordData, RRType, Resolver } from '../../dns/types.js';

type Answers = { [T in RRType]?: RecordData[T][] };

/** name → records by type; 'servfail' fails every type, 'hang' never answers. */
export type MemoryZone = Record<string, Answers | 'servfail' | 'hang'>;

export interface MemoryResolver extends Resolver {
  /** "TYPE name" of every lookup, in order. */
  readonly asked: string[];
}

export function memoryResolver(zone: MemoryZone): MemoryResolver {
  const asked: string[] = [];
  const byName = new Map(Object.entries(zone).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  return {
    asked,
    lookup<T extends RRType>(rawName: string, type: T): Promise<Lookup<T>> {
      const name = rawName.toLowerCase().replace(/\.$/, '');
      asked.push(`${type} ${name}`);
      const entry = byName.get(name);
      if (entry === 'hang') return new Promise<Lookup<T>>(() => {});
      if (entry === 'servfail') return Promise.resolve({ status: 'error', code: 'servfail', reason: 'memory: SERVFAIL', source: 'dns' });
      if (!entry) {
        const parent = [...byName.keys()].some((n) => n.endsWith(`.${name}`));
        return Promise.resolve(parent ? { status: 'nodata', source: 'dns' } : { status: 'nxdomain', source: 'dns' });
      }
      const records = entry[type] as RecordData[T][] | undefined;
      if (!records?.length) return Promise.resolve({ status: 'nodata', source: 'dns' });
      return Promise.resolve({ status: 'ok', records, ttl: 300, source: 'dns' });
    },
  };
}
