// ARC (RFC 8617): validation of the chain with mailauth, and the one use a receiver makes of a
// valid chain here: deciding whether a trusted intermediary saw the message authenticate before
// it changed it (RFC 7489 s7 local policy override; RFC 8617 s7.2).
import { arc as mailauthArc } from 'mailauth/lib/arc/index.js';
import type { NodeStyleResolve } from '../spf/node-style.js';
import type { ArcData } from './verify-dkim.js';
import { aligned, underDomain } from './domains.js';
import { REQUIRED, tagListProblem } from './tag-list.js';

/** What one hop's ARC-Authentication-Results said, reduced to what an override needs. */
export interface AarSummary {
  readonly authserv: string;
  readonly spf?: { readonly result: string; readonly domain: string };
  readonly dkim: readonly { readonly result: string; readonly domain: string }[];
  readonly dmarc?: { readonly result: string; readonly from: string };
  readonly arc?: string;
}

export interface ArcHop {
  readonly i: number;
  /** d= of the hop's ARC-Seal. */
  readonly sealer: string;
  readonly aar: AarSummary;
}

export interface ArcOutcome {
  readonly result: 'pass' | 'fail' | 'none';
  /** Instance of the newest set (0 without a chain). */
  readonly instance: number;
  /** For "fail": why, in words. */
  readonly reason: string;
  /** Newest first; only for a chain that validated. */
  readonly hops: readonly ArcHop[];
}

export async function verifyArc(data: ArcData, resolve: NodeStyleResolve, minRsaBits: number): Promise<ArcOutcome> {
  for (const link of data.chain || []) {
    const problem = tagListProblem(String(link['arc-seal'].original ?? ''), REQUIRED.seal) ??
      tagListProblem(String(link['arc-message-signature'].original ?? ''), REQUIRED.messageSignature);
    if (problem) return { result: 'fail', instance: data.lastEntry?.i ?? link.i, reason: `i=${link.i} malformed ARC set: ${problem}`, hops: [] };
  }
  // Read before mailauth's arc(): it strips the results out of the newest AAR's parsed form.
  const hops = [...(data.chain || [])].reverse().map((link) => ({
    i: link.i,
    sealer: String(link['arc-seal'].parsed?.d?.value ?? '').toLowerCase(),
    aar: summarise(link['arc-authentication-results'].parsed ?? {}),
  }));
  const r = await mailauthArc(data as never, { resolver: resolve as never, minBitLength: minRsaBits });
  const result = r.status.result === 'pass' ? 'pass' : r.status.result === 'fail' ? 'fail' : 'none';
  const instance = typeof r.i === 'number' ? r.i : 0;
  if (result !== 'pass') {
    return { result, instance, reason: result === 'fail' ? String(r.status.comment || 'chain did not validate') : '', hops: [] };
  }
  return { result, instance, reason: '', hops };
}

type Prop = { value?: unknown; header?: Record<string, unknown>; smtp?: Record<string, unknown> } | undefined;

function summarise(p: Record<string, unknown>): AarSummary {
  const str = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : '');
  const res = (x: Prop) => str(x?.value);
  const domainOf = (v: unknown) => str(v).replace(/^.*@/, '');
  const spf = p.spf as Prop;
  const dmarc = p.dmarc as Prop;
  const dkims = ([] as Prop[]).concat((p.dkim as Prop | Prop[]) ?? []);
  return {
    authserv: str(p.value),
    spf: spf ? { result: res(spf), domain: domainOf(spf.smtp?.mailfrom ?? spf.smtp?.mfrom ?? spf.smtp?.helo) } : undefined,
    dkim: dkims.filter(Boolean).map((d) => ({ result: res(d), domain: domainOf(d!.header?.d ?? d!.header?.i) })),
    dmarc: dmarc ? { result: res(dmarc), from: str(dmarc.header?.from) } : undefined,
    arc: p.arc ? res(p.arc as Prop) : undefined,
  };
}

export interface ArcOverride {
  readonly sealer: string;
  readonly instance: number;
  /** What the sealer saw, in words, for the log and the header comment. */
  readonly why: string;
}

/**
 * The newest hop whose sealer is trusted and whose AAR shows the message authenticated for the
 * From domain (dmarc=pass, or dkim/spf pass aligned with it). Walks back through trusted hops
 * that themselves saw a passing chain (arc=pass): list A → list B → us, both trusted.
 * Undefined when the chain did not validate or no trusted hop vouches.
 */
export function arcOverride(arc: ArcOutcome, fromDomain: string, trustedSealers: readonly string[]): ArcOverride | undefined {
  if (arc.result !== 'pass' || !trustedSealers.length) return undefined;
  for (const hop of arc.hops) {
    if (!trustedSealers.some((t) => underDomain(hop.sealer, t))) return undefined;
    const a = hop.aar;
    let why: string | undefined;
    if (a.dmarc?.result === 'pass' && (!a.dmarc.from || aligned(a.dmarc.from, fromDomain, false))) why = `dmarc=pass`;
    else if (a.dkim.some((d) => d.result === 'pass' && d.domain && aligned(d.domain, fromDomain, false))) {
      why = `dkim=pass for ${a.dkim.find((d) => d.result === 'pass' && aligned(d.domain, fromDomain, false))!.domain}`;
    } else if (a.spf?.result === 'pass' && a.spf.domain && aligned(a.spf.domain, fromDomain, false)) why = `spf=pass for ${a.spf.domain}`;
    if (why) return { sealer: hop.sealer, instance: hop.i, why: `${hop.sealer} (i=${hop.i}) saw ${why}` };
    if (a.arc !== 'pass') return undefined;
  }
  return undefined;
}
