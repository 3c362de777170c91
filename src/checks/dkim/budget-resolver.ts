// One message's DNS budget for mailauth: the gateway resolver in node:dns shape (the SPF check's
// adapter, src/checks/spf/node-style.ts) behind a deadline and a cap on questions. mailauth has no
// budget of its own, and the names it asks come from the message (d= and s= of every signature
// and seal): a hostile message must not keep a session waiting on dozens of slow zones.
import type { Resolver } from '../../dns/types.js';
import { dnsError, nodeStyleResolver, type NodeStyleResolve } from '../spf/node-style.js';

export interface BudgetedResolve {
  readonly resolve: NodeStyleResolve;
  /** Questions asked, as "TYPE name", for logs and tests. */
  readonly asked: string[];
}

export function budgetedResolve(resolver: Resolver, opts: { deadline: number; maxQueries: number; now?: () => number }): BudgetedResolve {
  const base = nodeStyleResolver(resolver);
  const now = opts.now ?? Date.now;
  const asked: string[] = [];
  const resolve: NodeStyleResolve = async (name, rrtype) => {
    const type = String(rrtype).toUpperCase();
    if (asked.length >= opts.maxQueries) throw dnsError('ESERVFAIL', name, type, `more than ${opts.maxQueries} DNS questions for one message`);
    const left = opts.deadline - now();
    if (left <= 0) throw dnsError('ETIMEOUT', name, type, 'authentication time budget spent');
    asked.push(`${type} ${name}`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        base(name, type),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(dnsError('ETIMEOUT', name, type, 'authentication time budget spent')), left);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { resolve, asked };
}
