// The domain's SPF record as an auditor reads it (RFC 7208): present and unique, valid by the
// grammar the gateway itself enforces (checks/spf/record.ts), ending in a policy for everyone
// else ("-all"/"~all", not "+all"/"?all"), within the 10 DNS-querying terms of s4.6.4 counted
// through every include and redirect, and permitting the domain's own MX hosts (evaluated with
// the gateway's evaluator, checks/spf/evaluate.ts, exactly as a receiver would).
import type { Resolver } from '../dns/types.js';
import { evaluateSpf } from '../checks/spf/evaluate.js';
import { parseSpfRecord, selectSpfRecords, type ParsedRecord } from '../checks/spf/record.js';
import { cleanEvidence, type Finding } from './findings.js';

/** RFC 7208 s4.6.4. */
export const SPF_LOOKUP_LIMIT = 10;
export const SPF_VOID_LIMIT = 2;
const MAX_DEPTH = 10;
/** The walk stops asking the DNS after this many questions (a broken record can loop or fan out). */
const MAX_WALK_QUERIES = 60;

export interface SpfWalk {
  /** DNS-querying terms: include, a, mx, ptr, exists, redirect, through every record reached. */
  lookups: number;
  /** Terms whose lookup found nothing (NXDOMAIN or no data). */
  voids: number;
  /** "include:_spf.example.net" lines, indented by depth, with what each contributed. */
  readonly tree: string[];
  /** Errors that make receivers return permerror/temperror. */
  readonly problems: string[];
  queries: number;
}

export async function checkSpf(resolver: Resolver, domain: string, mxAddresses: readonly { host: string; address: string }[]): Promise<Finding[]> {
  const target = domain;
  const txt = await resolver.lookup(domain, 'TXT');
  if (txt.status === 'error') {
    return [{
      code: 'SPF_DNS_ERROR', area: 'sender-auth', severity: 'warning', target, evidence: `${domain}. TXT: ${txt.reason}`,
      title: 'The SPF lookup failed (receivers get temperror)', fix: 'Check that the domain\'s name servers answer TXT questions over UDP and TCP.',
    }];
  }
  const records = txt.status === 'ok' ? selectSpfRecords(txt.records) : [];
  const allTxt = txt.status === 'ok' ? txt.records.map((r) => `${domain}. TXT "${r.join('')}"`).join('\n') : `${domain}. TXT: ${txt.status}`;
  if (!records.length) {
    return [{
      code: 'SPF_MISSING', area: 'sender-auth', severity: 'warning', target, evidence: cleanEvidence(allTxt || '(no TXT records)'),
      title: 'No SPF record: anyone can send as this domain without an SPF failure',
      fix: `Publish a TXT record such as "v=spf1 mx -all" at ${domain} listing every host that sends its mail.`,
    }];
  }
  if (records.length > 1) {
    return [{
      code: 'SPF_MULTIPLE', area: 'sender-auth', severity: 'critical', target, evidence: cleanEvidence(records.join('\n')),
      title: 'Several SPF records: receivers return permerror', fix: 'Merge them into one "v=spf1 … -all" record (RFC 7208 s4.5).',
    }];
  }
  const record = records[0]!;
  const parsed = parseSpfRecord(record);
  if (!parsed.ok) {
    return [{
      code: 'SPF_SYNTAX', area: 'sender-auth', severity: 'critical', target, evidence: cleanEvidence(`${record}\n${parsed.error}`),
      title: 'The SPF record is not valid (receivers return permerror)', fix: 'Correct the record to the RFC 7208 syntax.',
    }];
  }
  const findings: Finding[] = [];
  findings.push(...policyFindings(domain, record, parsed.record));

  const walk: SpfWalk = { lookups: 0, voids: 0, tree: [`${domain}: ${record}`], problems: [], queries: 0 };
  await walkRecord(resolver, domain, parsed.record, 1, walk, new Set([domain.toLowerCase()]));
  const walkEvidence = cleanEvidence([...walk.tree, `DNS-querying terms: ${walk.lookups} (limit ${SPF_LOOKUP_LIMIT}); void lookups: ${walk.voids} (limit ${SPF_VOID_LIMIT})`, ...walk.problems].join('\n'));
  if (walk.problems.length) {
    findings.push({
      code: 'SPF_INCLUDE_BROKEN', area: 'sender-auth', severity: 'critical', target, evidence: walkEvidence,
      title: `An included or redirected SPF record is broken: ${walk.problems[0]}`, fix: 'Fix or remove the include/redirect that points at a missing or invalid record.',
    });
  }
  if (walk.lookups > SPF_LOOKUP_LIMIT) {
    findings.push({
      code: 'SPF_TOO_MANY_LOOKUPS', area: 'sender-auth', severity: 'critical', target, evidence: walkEvidence,
      title: `The SPF record needs ${walk.lookups} DNS lookups (limit ${SPF_LOOKUP_LIMIT}): receivers return permerror`,
      fix: 'Replace includes by the ip4:/ip6: ranges they stand for, or drop senders you no longer use.',
    });
  } else if (walk.voids > SPF_VOID_LIMIT) {
    findings.push({
      code: 'SPF_VOID_LOOKUPS', area: 'sender-auth', severity: 'warning', target, evidence: walkEvidence,
      title: `${walk.voids} SPF terms point at names that do not exist (limit ${SPF_VOID_LIMIT})`,
      fix: 'Remove the terms that name non-existent hosts or domains.',
    });
  } else if (!walk.problems.length) {
    findings.push({ code: 'SPF_LOOKUPS_OK', area: 'sender-auth', severity: 'ok', target, evidence: walkEvidence, title: `${walk.lookups} DNS lookup${walk.lookups === 1 ? '' : 's'} (limit ${SPF_LOOKUP_LIMIT})` });
  }

  if (!walk.problems.length && walk.lookups <= SPF_LOOKUP_LIMIT) findings.push(...await coverage(resolver, domain, mxAddresses));
  return findings;
}

function policyFindings(domain: string, record: string, parsed: ParsedRecord): Finding[] {
  const target = domain;
  const evidence = `${domain}. TXT "${record}"`;
  const out: Finding[] = [];
  const all = parsed.mechanisms.find((m) => m.name === 'all');
  const everything = parsed.mechanisms.find((m) => m.qualifier === '+' &&
    ((m.name === 'ip4' && m.cidr4 === 0) || (m.name === 'ip6' && m.cidr6 === 0)));
  if (everything || all?.qualifier === '+') {
    out.push({
      code: 'SPF_PASS_ALL', area: 'sender-auth', severity: 'critical', target, evidence,
      title: `The SPF record permits every sender on the Internet ("${(everything ?? all)!.text}")`,
      fix: 'End the record with "-all" (or "~all") and list only the hosts that send your mail.',
    });
  } else if (all?.qualifier === '?') {
    out.push({
      code: 'SPF_NEUTRAL_ALL', area: 'sender-auth', severity: 'warning', target, evidence,
      title: 'The SPF record ends in "?all": it says nothing about forged senders', fix: 'End the record with "-all" (or "~all" while you check your senders).',
    });
  } else if (!all && !parsed.redirect) {
    out.push({
      code: 'SPF_NO_ALL', area: 'sender-auth', severity: 'warning', target, evidence,
      title: 'The SPF record has no "all": forged senders get "neutral"', fix: 'End the record with "-all" (or "~all").',
    });
  } else if (all) {
    out.push({ code: 'SPF_POLICY', area: 'sender-auth', severity: 'ok', target, evidence, title: `The SPF record is valid and ends in "${all.text}"` });
  } else {
    out.push({ code: 'SPF_POLICY', area: 'sender-auth', severity: 'ok', target, evidence, title: `The SPF record is valid and redirects to ${parsed.redirect}` });
  }
  if (parsed.mechanisms.some((m) => m.name === 'ptr')) {
    out.push({
      code: 'SPF_PTR', area: 'sender-auth', severity: 'info', target, evidence,
      title: 'The SPF record uses "ptr" (RFC 7208 s5.5: do not use)', fix: 'Replace "ptr" by the ip4:/ip6: ranges or a/mx terms it stands for.',
    });
  }
  return out;
}

/** Walks the record's DNS-querying terms, following include and redirect. */
async function walkRecord(resolver: Resolver, domain: string, record: ParsedRecord, depth: number, walk: SpfWalk, seen: Set<string>): Promise<void> {
  const indent = '  '.repeat(depth);
  const hasAll = record.mechanisms.some((m) => m.name === 'all');
  const terms = [
    ...record.mechanisms.filter((m) => ['include', 'a', 'mx', 'ptr', 'exists'].includes(m.name)).map((m) => ({ name: m.name, spec: m.domainSpec, text: m.text })),
    // RFC 7208 s6.1: redirect is ignored when the record has "all".
    ...(record.redirect && !hasAll ? [{ name: 'redirect', spec: record.redirect, text: `redirect=${record.redirect}` }] : []),
  ];
  for (const term of terms) {
    walk.lookups++;
    const name = (term.spec ?? domain).toLowerCase().replace(/\.$/, '');
    if (name.includes('%')) {
      walk.tree.push(`${indent}${term.text} (macros: not followed)`);
      continue;
    }
    if (walk.queries >= MAX_WALK_QUERIES || depth > MAX_DEPTH) {
      walk.tree.push(`${indent}${term.text} (not followed: the walk is too deep or too long)`);
      continue;
    }
    if (term.name === 'include' || term.name === 'redirect') {
      if (seen.has(name)) {
        walk.problems.push(`${term.text} loops back to ${name}`);
        walk.tree.push(`${indent}${term.text} (loop)`);
        continue;
      }
      walk.queries++;
      const txt = await resolver.lookup(name, 'TXT');
      if (txt.status === 'error') {
        walk.problems.push(`${term.text}: DNS error (${txt.reason})`);
        walk.tree.push(`${indent}${term.text} (DNS error)`);
        continue;
      }
      const found = txt.status === 'ok' ? selectSpfRecords(txt.records) : [];
      if (txt.status !== 'ok') walk.voids++;
      if (found.length !== 1) {
        walk.problems.push(`${term.text}: ${found.length ? 'several SPF records' : 'no SPF record'} at ${name}`);
        walk.tree.push(`${indent}${term.text} (${found.length ? 'several records' : 'no record'})`);
        continue;
      }
      const inner = parseSpfRecord(found[0]!);
      if (!inner.ok) {
        walk.problems.push(`${term.text}: invalid record at ${name}: ${inner.error}`);
        walk.tree.push(`${indent}${term.text}: ${found[0]} (invalid)`);
        continue;
      }
      const before = walk.lookups;
      const line = walk.tree.length;
      walk.tree.push('');
      await walkRecord(resolver, name, inner.record, depth + 1, walk, new Set([...seen, name]));
      walk.tree[line] = `${indent}${term.text} → ${walk.lookups - before} more lookup(s)`;
      continue;
    }
    // a, mx, exists, ptr: one question each (ptr's depend on the client: counted, not asked).
    if (term.name === 'ptr') {
      walk.tree.push(`${indent}${term.text}`);
      continue;
    }
    walk.queries++;
    const type = term.name === 'mx' ? 'MX' : 'A';
    const answer = await resolver.lookup(name, type);
    if (answer.status === 'nxdomain' || answer.status === 'nodata') {
      // For "a", a name with only AAAA records is not void: ask before counting it.
      const aaaa = term.name === 'a' ? await resolver.lookup(name, 'AAAA') : undefined;
      if (!aaaa || aaaa.status !== 'ok') walk.voids++;
    }
    if (answer.status === 'ok' && term.name === 'mx' && answer.records.length > 10) {
      walk.problems.push(`${term.text}: ${answer.records.length} MX hosts (RFC 7208 s4.6.4 allows 10)`);
    }
    walk.tree.push(`${indent}${term.text} (${answer.status})`);
  }
}

async function coverage(resolver: Resolver, domain: string, mxAddresses: readonly { host: string; address: string }[]): Promise<Finding[]> {
  if (!mxAddresses.length) return [];
  const results = await Promise.all(mxAddresses.map(async (m) => ({
    ...m,
    outcome: await evaluateSpf(resolver, { ip: m.address, sender: `postmaster@${domain}`, helo: m.host, hostname: 'portcullis-audit.invalid' }, { budgetMs: 15_000 }),
  })));
  const lines = results.map((r) => `${r.host} [${r.address}]: ${r.outcome.result}${r.outcome.problem ? ` (${r.outcome.problem})` : ''}`);
  const uncovered = results.filter((r) => r.outcome.result !== 'pass');
  if (!uncovered.length) {
    return [{ code: 'SPF_COVERS_MX', area: 'sender-auth', severity: 'ok', target: domain, evidence: lines.join('\n'), title: 'The SPF record permits every MX address' }];
  }
  return [{
    code: 'SPF_MX_NOT_COVERED', area: 'sender-auth', severity: 'warning', target: domain, evidence: cleanEvidence(lines.join('\n')),
    title: `The SPF record does not permit ${uncovered.length} of ${results.length} MX address(es)`,
    fix: 'Add "mx" (or the hosts\' ip4:/ip6: ranges) to the record if the MX hosts also send mail (bounces, forwards, replies).',
  }];
}
