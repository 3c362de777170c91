// Authentication-Results method entries (RFC 8601) for DKIM, DMARC and ARC. Everything in them
// that came from the message or from DNS (d=, s=, b=, domains, reasons) is cut to printable
// ASCII and bounded here, so a hostile signature cannot break or bloat the header.
import type { DkimSignature } from './verify-dkim.js';
import type { DmarcOutcome } from './dmarc.js';
import type { ArcOutcome } from './arc.js';

/** Printable ASCII only, bounded. */
export function clean(s: string, max = 300): string {
  const t = s.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}

/** RFC 8601 pvalue: a token or a domain as is, anything else as a quoted-string. */
export function pvalue(v: string, max = 255): string {
  const t = clean(v, max);
  return /^[A-Za-z0-9._@-]+$/.test(t) ? t : `"${t.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 5322 comment: "(", ")" and "\" escaped. */
export function comment(s: string, max = 200): string {
  const t = clean(s, max);
  return t ? ` (${t.replace(/[()\\]/g, (c) => `\\${c}`)})` : '';
}

export function dkimEntry(s: DkimSignature): string {
  let note = s.reason;
  if (s.result === 'pass' && s.unsignedBytes) note = `${s.unsignedBytes} body bytes after the signed length l=`;
  const b = s.b ? ` header.b=${pvalue(s.b.slice(0, 8))}` : '';
  return `dkim=${s.result}${comment(note)} header.d=${pvalue(s.domain || 'unknown', 253)} header.s=${pvalue(s.selector || 'unknown', 63)}${b}`;
}

export function arcEntry(a: ArcOutcome): string {
  if (a.result === 'none') return 'arc=none';
  if (a.result === 'fail') return `arc=fail${comment(`i=${a.instance} ${a.reason}`)}`;
  const newest = a.hops[0];
  const seen = newest ? upstream(newest.aar) : '';
  return `arc=pass${comment(`i=${a.instance}${newest ? ` as.d=${newest.sealer}` : ''}${seen ? ` upstream ${seen}` : ''}`)}`;
}

function upstream(aar: ArcOutcome['hops'][number]['aar']): string {
  const parts: string[] = [];
  if (aar.spf) parts.push(`spf=${aar.spf.result}`);
  for (const d of aar.dkim.slice(0, 3)) parts.push(`dkim=${d.result}${d.domain ? `:${d.domain}` : ''}`);
  if (aar.dmarc) parts.push(`dmarc=${aar.dmarc.result}`);
  return parts.join(' ');
}

/** `dmarc=fail (p=reject dis=reject) header.from=example.org`; `dis` is what we did with the message. */
export function dmarcEntry(o: DmarcOutcome, disposition?: 'none' | 'quarantine' | 'reject', note?: string): string {
  const from = ` header.from=${pvalue(o.fromDomain || 'unknown', 253)}`;
  if (o.result === 'none') return `dmarc=none${from}`;
  if (o.result === 'temperror') return `dmarc=temperror${comment(o.reason)}${from}`;
  const r = o.record!;
  const parts = [`${o.source}=${o.policy}`];
  if (o.source === 'p' && r.sp && r.sp !== r.p) parts.push(`sp=${r.sp}`);
  if (r.pct < 100) parts.push(`pct=${r.pct}`);
  if (disposition) parts.push(`dis=${disposition}`);
  if (note) parts.push(note);
  return `dmarc=${o.result}${comment(parts.join(' '))}${from}`;
}
