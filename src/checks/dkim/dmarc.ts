// DMARC (RFC 7489, with RFC 9091 "np") for one From domain: the record, alignment, the policy
// that applies (p, sp or np), and pct sampling.
//
// mailauth finds the record (its getDmarcRecord asks _dmarc.<from domain>, then _dmarc.<org
// domain>). The rest is done here because mailauth 4.13.3's dmarc() ignores adkim=s/aspf=s (see
// domains.ts), does not check p= (RFC 7489 s6.6.3: an invalid p= with rua= reads as p=none,
// without rua= the record does not count), reads a malformed pct= as 0 rather than the default
// 100, and knows no np=.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { domainToASCII } from 'node:url';
import type { NodeStyleResolve } from '../spf/node-style.js';
import { aligned, normal, orgDomain } from './domains.js';

const require = createRequire(import.meta.url);
const getDmarcRecord = require('mailauth/lib/dmarc/get-dmarc-record.js') as (
  domain: string, resolver: NodeStyleResolve,
) => Promise<false | { rr: string; isOrgRecord: boolean }>;

export type Policy = 'none' | 'quarantine' | 'reject';

export interface DmarcRecord {
  readonly p: Policy;
  readonly sp?: Policy;
  readonly np?: Policy;
  readonly pct: number;
  readonly adkim: 'r' | 's';
  readonly aspf: 'r' | 's';
  /** The record as published. */
  readonly raw: string;
  /** Set when the record had an invalid p= or sp= and is read as p=none for its rua= (RFC 7489 s6.6.3). */
  readonly repaired?: string;
}

const POLICIES = new Set(['none', 'quarantine', 'reject']);

/** Parses a DMARC record; undefined when it does not count (RFC 7489 s6.6.3). */
export function parseDmarcRecord(raw: string): DmarcRecord | undefined {
  const tags = new Map<string, string>();
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!tags.has(key)) tags.set(key, part.slice(eq + 1).trim());
  }
  if ((tags.get('v') ?? '').toUpperCase() !== 'DMARC1') return undefined;
  const policy = (k: string): Policy | undefined | null => {
    const v = tags.get(k);
    if (v === undefined) return undefined;
    const l = v.toLowerCase();
    return POLICIES.has(l) ? (l as Policy) : null;
  };
  const p = policy('p');
  const sp = policy('sp');
  const np = policy('np');
  const pctRaw = tags.get('pct');
  const pct = pctRaw !== undefined && /^\d{1,3}$/.test(pctRaw) && Number(pctRaw) <= 100 ? Number(pctRaw) : 100;
  const mode = (k: string): 'r' | 's' => ((tags.get(k) ?? '').toLowerCase() === 's' ? 's' : 'r');
  const base = { pct, adkim: mode('adkim'), aspf: mode('aspf'), raw };
  if (!p || sp === null) {
    // RFC 7489 s6.6.3: with a valid rua=, act as if p=none was published; else no DMARC at all.
    if (!/mailto:/i.test(tags.get('rua') ?? '')) return undefined;
    return { ...base, p: 'none', repaired: !p ? `invalid p=${tags.get('p') ?? ''} (read as p=none for rua=)` : `invalid sp=${tags.get('sp')} (read as p=none for rua=)` };
  }
  return { ...base, p, ...(sp ? { sp } : {}), ...(np ? { np } : {}) };
}

export interface DmarcInput {
  readonly fromDomain: string;
  /** Domains (d=) of the DKIM signatures that passed. */
  readonly dkimPass: readonly string[];
  /** Domains (d=) of the DKIM signatures whose key could not be fetched (DNS failure). */
  readonly dkimTemp?: readonly string[];
  /** The SPF result the MAIL stage found, with the domain it checked; undefined when SPF did not run. */
  readonly spf?: { readonly result: string; readonly domain: string };
  /** Stable per message (so a retry samples alike): see sampleKey(). */
  readonly sampleKey: string;
  readonly resolve: NodeStyleResolve;
}

export interface DmarcOutcome {
  readonly result: 'pass' | 'fail' | 'none' | 'temperror';
  readonly fromDomain: string;
  readonly orgDomain: string;
  readonly record?: DmarcRecord;
  /** The domain whose _dmarc record applied: the From domain, or its organizational domain. */
  readonly recordDomain?: string;
  /** Which tag gave the policy for this From domain. */
  readonly source?: 'p' | 'sp' | 'np';
  /** The domain's policy for this message (p, sp or np), before sampling. */
  readonly policy?: Policy;
  /** What pct= leaves of it: the policy, or the next lesser one when this message is not in the sample. */
  readonly applied?: Policy;
  readonly sampledOut?: boolean;
  /** The aligned identifiers that passed. */
  readonly alignedDkim?: string;
  readonly alignedSpf?: string;
  /** Why, in words. */
  readonly reason: string;
}

export async function evaluateDmarc(input: DmarcInput): Promise<DmarcOutcome> {
  const fromDomain = normal(domainToASCII(input.fromDomain) || input.fromDomain);
  const org = orgDomain(fromDomain);
  const base = { fromDomain, orgDomain: org };
  let found: false | { rr: string; isOrgRecord: boolean };
  try {
    found = await getDmarcRecord(fromDomain, input.resolve);
  } catch (err) {
    return { ...base, result: 'temperror', reason: `DMARC record of ${fromDomain} could not be fetched: ${(err as Error).message}` };
  }
  if (!found) return { ...base, result: 'none', reason: `${fromDomain} publishes no DMARC record` };
  const record = parseDmarcRecord(found.rr);
  if (!record) return { ...base, result: 'none', reason: `the DMARC record of ${found.isOrgRecord ? org : fromDomain} is invalid (no valid p= and no rua=)` };

  const alignedDkim = input.dkimPass.find((d) => aligned(d, fromDomain, record.adkim === 's'));
  const alignedSpf = input.spf?.result === 'pass' && aligned(input.spf.domain, fromDomain, record.aspf === 's') ? normal(input.spf.domain) : undefined;

  let source: 'p' | 'sp' | 'np' = 'p';
  if (found.isOrgRecord && fromDomain !== org) {
    if (record.np && (await nonExistent(fromDomain, input.resolve))) source = 'np';
    else if (record.sp) source = 'sp';
  }
  const policy = record[source]!;
  const sampled = record.pct >= 100 || sample(input.sampleKey) < record.pct;
  const applied: Policy = sampled ? policy : policy === 'reject' ? 'quarantine' : 'none';
  const where = found.isOrgRecord ? `${org} (organizational domain of ${fromDomain})` : fromDomain;
  const common = { ...base, record, recordDomain: found.isOrgRecord ? org : fromDomain, source, policy, applied, sampledOut: !sampled };
  if (alignedDkim || alignedSpf) {
    const by = alignedDkim ? `DKIM signature of ${alignedDkim}` : `SPF of ${alignedSpf}`;
    return { ...common, result: 'pass', alignedDkim, alignedSpf, reason: `${by} aligned with From ${fromDomain} (record of ${where})` };
  }
  // RFC 7489 s6.6.2: an aligned identifier that could not be checked for a DNS failure leaves
  // the result undecided. A refusal on it would refuse the domain's own mail whenever its DNS,
  // or ours, is slow; a temperror is scored and never refuses (like rspamd's DMARC_DNSFAIL).
  const tempDkim = input.dkimTemp?.find((d) => aligned(d, fromDomain, record.adkim === 's'));
  const tempSpf = input.spf?.result === 'temperror' && aligned(input.spf.domain, fromDomain, record.aspf === 's') ? normal(input.spf.domain) : undefined;
  if (tempDkim || tempSpf) {
    const what = tempDkim ? `the DKIM key of ${tempDkim} could not be fetched` : `SPF of ${tempSpf} ended in a DNS error`;
    return { ...common, result: 'temperror', reason: `nothing aligned with From ${fromDomain} passed and ${what}: DMARC undecided (${source}=${policy} in the record of ${where})` };
  }
  const tried: string[] = [];
  tried.push(input.dkimPass.length ? `DKIM passed only for ${input.dkimPass.join(', ')}` : 'no valid DKIM signature');
  if (!input.spf) tried.push('SPF not checked');
  else if (input.spf.result !== 'pass') tried.push(`SPF ${input.spf.result} for ${input.spf.domain || 'the sender'}`);
  else tried.push(`SPF passed for ${input.spf.domain}`);
  const mode = record.adkim === 's' || record.aspf === 's' ? ` (adkim=${record.adkim} aspf=${record.aspf})` : '';
  const pct = sampled ? '' : `; pct=${record.pct} sampled this message out, ${policy} applied as ${applied}`;
  return { ...common, result: 'fail', reason: `nothing aligned with From ${fromDomain}${mode}: ${tried.join(', ')}; ${source}=${policy} in the record of ${where}${pct}` };
}

/**
 * The sampling key of a message: its Message-ID, else its From, Date and Subject, so that a
 * retry of the same message is sampled alike (RFC 7489 s6.6.4 leaves the method to us).
 */
export function sampleKey(fields: { messageId?: string; from?: string; date?: string; subject?: string }): string {
  return fields.messageId?.trim() || `${fields.from ?? ''}\n${fields.date ?? ''}\n${fields.subject ?? ''}`;
}

/** 0..99, uniform over keys. */
export function sample(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % 100;
}

/** RFC 9091 s2.1: NXDOMAIN for A, AAAA and MX. A DNS failure counts as existing. */
async function nonExistent(domain: string, resolve: NodeStyleResolve): Promise<boolean> {
  for (const type of ['A', 'AAAA', 'MX']) {
    try {
      await resolve(domain, type);
      return false;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOTFOUND') return false;
    }
  }
  return true;
}
