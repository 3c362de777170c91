// Organizational domains and identifier alignment (RFC 7489 s3.2, s3.1).
//
// Why not mailauth's getAlignment: in 4.13.3 the DMARC code passes `{ strict }` where the
// function expects a boolean, and the strict branch falls through to the relaxed one anyway, so
// adkim=s / aspf=s are never honoured. The rule itself is a few lines.
import { getDomain } from 'tldts';

// As mailauth finds it, so that both agree: the Public Suffix List with its private section.
const PSL = { allowIcannDomains: true, allowPrivateDomains: true };

export const normal = (d: string): string => d.trim().toLowerCase().replace(/\.$/, '');

/** The organizational domain (RFC 7489 s3.2); the name itself when the PSL knows no suffix. */
export function orgDomain(domain: string): string {
  const d = normal(domain);
  return getDomain(d, PSL) ?? d;
}

/** Identifier alignment: the same name (strict), or the same organizational domain (relaxed). */
export function aligned(identifier: string, fromDomain: string, strict: boolean): boolean {
  const a = normal(identifier);
  const b = normal(fromDomain);
  if (!a || !b) return false;
  return strict ? a === b : orgDomain(a) === orgDomain(b);
}

/** `name` is `parent` or below it. */
export function underDomain(name: string, parent: string): boolean {
  const n = normal(name);
  const p = normal(parent);
  return !!p && (n === p || n.endsWith(`.${p}`));
}
