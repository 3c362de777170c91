// The resolver mailauth's SPF code is given for one evaluation: the gateway's resolver (through
// node-style.ts) plus five things mailauth does not do itself:
// - a time budget for the whole evaluation (RFC 7208 s4.6.4: at least 20 s; mailauth has none):
//   once spent, every further lookup fails at once, so the evaluation ends in "temperror";
// - a hard cap on DNS questions per evaluation, under mailauth's own RFC limits (10 lookups,
//   2 void lookups, 10 MX/PTR names), as a second fence against lookup bombs;
// - the full RFC 7208 syntax check of every SPF record fetched (record.ts): a syntax error is a
//   "permerror" for the record that has it, wherever it is in the include/redirect tree;
// - %{d} bound to the domain each record belongs to (macro.ts bindDomainMacro: mailauth would
//   expand it as the sender's domain inside included and redirected-to records);
// - DNS errors marked as "temperror" with the name that failed (mailauth leaves errors other
//   than ETIMEOUT/EREFUSED unmarked, and its include code ignores unmarked errors).
// And it keeps a trace of every question and answer, for the explanation and the explainer.
import type { NodeStyleResolve } from './node-style.js';
import { parseSpfRecord, selectSpfRecords } from './record.js';
import { bindDomainMacro } from './macro.js';

export interface DnsStep {
  readonly name: string;
  readonly type: string;
  readonly outcome: 'ok' | 'nxdomain' | 'nodata' | 'error';
  readonly records?: readonly unknown[];
  /** node:dns code and detail of an error. */
  readonly reason?: string;
  readonly ms: number;
}

interface SpfMarkedError extends Error {
  code?: string;
  spfResult?: { error: 'permerror' | 'temperror'; text: string };
}

export interface TracingResolver {
  readonly resolve: NodeStyleResolve;
  /** Every question asked, in order. */
  readonly steps: DnsStep[];
  /** The last problem this layer reported (syntax error, budget, DNS failure). */
  problem(): string | undefined;
}

export interface SpfResolverOptions {
  /** Date.now() value after which no more lookups are made. */
  readonly deadline: number;
  readonly maxQueries: number;
  readonly now?: () => number;
}

/** A name as the trace and the analysis compare it: lower case, no trailing dot. */
export const canonicalName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

export function spfResolver(base: NodeStyleResolve, opts: SpfResolverOptions): TracingResolver {
  const now = opts.now ?? Date.now;
  const steps: DnsStep[] = [];
  let problem: string | undefined;

  const marked = (code: string, error: 'permerror' | 'temperror', text: string): SpfMarkedError => {
    const err: SpfMarkedError = new Error(text);
    err.code = code;
    err.spfResult = { error, text };
    problem = text;
    return err;
  };

  const resolve: NodeStyleResolve = async (rawName, rrtype) => {
    const name = canonicalName(String(rawName));
    const type = String(rrtype).toUpperCase();
    if (steps.length >= opts.maxQueries) {
      throw marked('ESPFLIMIT', 'permerror', `more than ${opts.maxQueries} DNS queries for one SPF check`);
    }
    const left = opts.deadline - now();
    if (left <= 0) throw marked('ECANCELLED', 'temperror', `SPF time budget spent before looking up ${type} ${name}`);
    const started = now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const records = await Promise.race([
        base(name, type),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(marked('ECANCELLED', 'temperror', `SPF time budget spent while looking up ${type} ${name}`)), left);
        }),
      ]);
      steps.push({ name, type, outcome: 'ok', records, ms: now() - started });
      if (type === 'TXT') {
        const spf = selectSpfRecords(records as string[][]);
        if (spf.length === 1) {
          const parsed = parseSpfRecord(spf[0]!);
          if (!parsed.ok) throw marked('ESPFSYNTAX', 'permerror', `syntax error in the SPF record of ${name}: ${parsed.error}`);
          const bound = bindDomainMacro(spf[0]!, name);
          if (bound !== spf[0]) return (records as string[][]).map((r) => (r.join('') === spf[0] ? [bound] : r));
        }
      }
      return records;
    } catch (e) {
      const err = e as SpfMarkedError;
      if (err.spfResult) throw err;
      const code = err.code ?? 'ESERVFAIL';
      const outcome = code === 'ENOTFOUND' ? 'nxdomain' : code === 'ENODATA' ? 'nodata' : 'error';
      steps.push({ name, type, outcome, reason: outcome === 'error' ? err.message : undefined, ms: now() - started });
      if (outcome !== 'error') throw err;
      // mailauth replaces the text of ETIMEOUT errors with "DNS timeout"; problem() keeps ours.
      err.spfResult = { error: 'temperror', text: `DNS ${code === 'ETIMEOUT' ? 'timeout' : `error (${code})`} looking up ${type} ${name}` };
      problem = err.spfResult.text;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  return { resolve, steps, problem: () => problem };
}
