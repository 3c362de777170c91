// URI DNS blocklists: `<registrable domain>.<zone>` for domain lists (Spamhaus DBL, SURBL,
// URIBL), `<reversed IP>.<zone>` for IP lists (the SBL, for IP hosts and, with `resolve`, for
// the addresses of a domain's host or name servers). Answers are read either as return codes
// (DBL: 127.0.1.2 spam, .4 phish…) or as a bitmask in the last octet (SURBL/URIBL multi).
//
// "Query refused" answers are not listings: 127.255.255.0/24 (Spamhaus: public resolver, rate
// limit), 127.0.1.255 (DBL: the query is not a domain), and for bitmask lists 127.0.0.1 (bit 1:
// SURBL and URIBL say "your resolver is blocked"). They, and DNS errors, make the list unknown.
import net from 'node:net';
import type { Lookup, Resolver, RRType } from '../../dns/types.js';
import { compileCodeMatcher, isRefusalCode, reverseName, type CodeMatcher } from '../../net/ip-names.js';
import type { UriListConfig } from './config.js';

/** One way an answer counts: a symbol and its weight. */
export interface ListResult {
  readonly symbol: string;
  readonly weight: number;
}

export interface CompiledUriList {
  readonly zone: string;
  readonly name: string;
  readonly type: 'domain' | 'ip';
  readonly resolve?: 'a' | 'ns';
  /** The results an A record stands for (several for a bitmask answer). */
  results(code: string): ListResult[];
  refused(code: string): boolean;
  /** For docs and check-uri: what the list looks for. */
  readonly description: string;
}

/** DBL_SPAMHAUS_ORG for dbl.spamhaus.org. */
export function uriListName(zone: string): string {
  return zone.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/** Compiles configured lists; throws naming uri.lists[i] on a bad code, bit or duplicate symbol. */
export function compileUriLists(lists: readonly UriListConfig[]): CompiledUriList[] {
  const seen = new Map<string, number>();
  const claim = (symbol: string, i: number) => {
    const other = seen.get(symbol);
    if (other !== undefined && other !== i) throw new Error(`uri.lists[${i}]: symbol ${symbol} is also a symbol of uri.lists[${other}]; give one of them a name`);
    seen.set(symbol, i);
  };
  return lists.map((l, i) => {
    const zone = l.zone.toLowerCase().replace(/\.$/, '');
    const name = (l.name ?? uriListName(zone)).toUpperCase();
    const base = `URIBL_${name}`;
    const sub = (v: string | { name: string; weight?: number }): ListResult => {
      const o = typeof v === 'string' ? { name: v } : v;
      const symbol = `${base}_${o.name.toUpperCase()}`;
      claim(symbol, i);
      return { symbol, weight: o.weight ?? l.weight };
    };
    const where = `uri.lists[${i}] (${zone})`;
    if (l.bitmask) {
      const bits = Object.entries(l.bitmask).map(([k, v]) => {
        const bit = Number(k);
        if (!Number.isInteger(bit) || bit < 2 || bit > 128 || (bit & (bit - 1)) !== 0) {
          throw new Error(`${where} bitmask: "${k}" is not a bit value (2, 4, 8, 16, 32, 64 or 128; 1 means "query refused")`);
        }
        return { bit, result: sub(v) };
      });
      return {
        zone, name, type: l.type, resolve: l.resolve,
        description: `bitmask ${bits.map((b) => `${b.bit}=${b.result.symbol}`).join(', ')}`,
        refused: (code) => isRefusalCode(code) || code === '127.0.0.1',
        results(code) {
          if (!isBitmaskCode(code)) return [];
          const last = Number(code.split('.')[3]);
          return bits.filter((b) => (last & b.bit) !== 0).map((b) => b.result);
        },
      };
    }
    let matchers: { m: CodeMatcher; result: ListResult }[];
    try {
      if (l.codes && !Array.isArray(l.codes)) {
        matchers = Object.entries(l.codes).map(([filter, v]) => ({ m: compileCodeMatcher([filter]), result: sub(v) }));
      } else {
        claim(base, i);
        matchers = [{ m: compileCodeMatcher(l.codes ?? []), result: { symbol: base, weight: l.weight } }];
      }
    } catch (err) {
      throw new Error(`${where} codes: ${(err as Error).message}`);
    }
    return {
      zone, name, type: l.type, resolve: l.resolve,
      description: matchers.map((x) => `${x.m.description}=${x.result.symbol}`).join(', '),
      refused: (code) => isRefusalCode(code) || code === '127.0.1.255',
      results(code) {
        if (this.refused(code)) return [];
        const out: ListResult[] = [];
        for (const x of matchers) if (x.m.matches(code) && !out.includes(x.result)) out.push(x.result);
        return out;
      },
    };
  });
}

function isBitmaskCode(code: string): boolean {
  return net.isIP(code) === 4 && code.startsWith('127.') && !isRefusalCode(code);
}

/** What one list said about one name. */
export type ListAnswer =
  | { readonly kind: 'listed'; readonly codes: readonly string[]; readonly results: readonly ListResult[] }
  | { readonly kind: 'clean' }
  | { readonly kind: 'failed'; readonly reason: string };

/** Asks one list about a domain or an IP (reversed for the query); never throws. */
export async function queryList(resolver: Resolver, list: CompiledUriList, subject: string): Promise<ListAnswer> {
  const label = net.isIP(subject) ? reverseName(subject) : subject;
  if (!label) return { kind: 'clean' };
  const a = await ask(resolver, `${label}.${list.zone}`, 'A');
  if (a.status === 'error') return { kind: 'failed', reason: a.reason };
  if (a.status !== 'ok') return { kind: 'clean' };
  const results: ListResult[] = [];
  const codes: string[] = [];
  for (const code of a.records) {
    const r = list.results(code);
    if (r.length) codes.push(code);
    for (const x of r) if (!results.includes(x)) results.push(x);
  }
  if (results.length) return { kind: 'listed', codes, results };
  const refused = a.records.filter((c) => list.refused(c));
  if (refused.length) return { kind: 'failed', reason: `query refused (answered ${refused.join(', ')})` };
  return { kind: 'clean' };
}

/** The resolver promises never to throw; a broken one still costs only a tempfail. */
export async function ask<T extends RRType>(resolver: Resolver, name: string, type: T): Promise<Lookup<T>> {
  try {
    return await resolver.lookup(name, type);
  } catch (err) {
    return { status: 'error', code: 'network', reason: (err as Error).message, source: 'dns' };
  }
}
