// DANE for SMTP (RFC 7672): which TLSA records of `_25._tcp.<mxhost>` are usable, and whether a
// server's certificate chain matches one of them (RFC 6698 2.1, RFC 7671).
//
// Usable: DANE-TA(2) and DANE-EE(3), selectors Cert(0) and SPKI(1), matching types Full(0),
// SHA2-256(1) and SHA2-512(2) with a digest of the right length. PKIX-TA(0) and PKIX-EE(1) are
// unusable for SMTP (RFC 7672 3.1.3), as is anything unknown.
//
// DANE-EE(3): the leaf matches; no name or date checks (RFC 7672 3.1.1 — the DNS binds the key).
// DANE-TA(2): a certificate above the leaf in the chain the server sent matches, the links from
// the leaf up to it are signed by each other, and the leaf carries the MX host name and valid
// dates (RFC 7672 3.1.2, 3.2.2). A TA given only as a public key (selector 1) must therefore be
// present in the sent chain as a certificate; a bare key that no sent certificate carries is not
// matched (noted in docs/outbound-tls.md).
import crypto, { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { TlsaRecord } from '../../dns/types.js';
import type { TlsCheck } from '../outbound-tls.js';

const DIGEST_LENGTH: Record<number, number | undefined> = { 1: 32, 2: 64 };

export function isUsableTlsa(r: TlsaRecord): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  if (r.matchingType === 0) return r.data.length > 0;
  const len = DIGEST_LENGTH[r.matchingType];
  return len !== undefined && r.data.length === len;
}

/** The presentation form of a record ("3 1 1 ab12…"), for logs and TLS-RPT's policy-string. */
export function tlsaText(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;
}

/** The chain as the server sent it, leaf first (getPeerCertificate(true)'s issuer links). */
export function peerChain(peer: PeerCertificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<PeerCertificate>();
  let cur: PeerCertificate | undefined = peer;
  while (cur && cur.raw && !seen.has(cur) && out.length < 16) {
    seen.add(cur);
    out.push(new X509Certificate(cur.raw));
    const next = (cur as DetailedPeerCertificate).issuerCertificate as PeerCertificate | undefined;
    if (!next || next === cur || (next.fingerprint256 && next.fingerprint256 === cur.fingerprint256)) break;
    cur = next;
  }
  return out;
}

function selected(cert: X509Certificate, selector: number): Buffer {
  return selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
}

function associated(cert: X509Certificate, r: TlsaRecord): boolean {
  const data = selected(cert, r.selector);
  const value = r.matchingType === 0 ? data : crypto.createHash(r.matchingType === 1 ? 'sha256' : 'sha512').update(data).digest();
  return value.length === r.data.length && crypto.timingSafeEqual(value, r.data);
}

/**
 * Checks a server's chain against the usable records. `servername` is the MX host name (the
 * reference identifier for DANE-TA, RFC 7672 3.2.2).
 */
export function checkDane(records: readonly TlsaRecord[], peer: PeerCertificate, servername: string, now = Date.now()): TlsCheck {
  const usable = records.filter(isUsableTlsa);
  if (!peer || !peer.raw) return { ok: false, reason: 'the server sent no certificate', result: 'tlsa-invalid' };
  let chain: X509Certificate[];
  try {
    chain = peerChain(peer);
  } catch (err) {
    return { ok: false, reason: `unreadable certificate: ${(err as Error).message}`, result: 'tlsa-invalid' };
  }
  const leaf = chain[0]!;
  for (const r of usable.filter((t) => t.usage === 3)) {
    if (associated(leaf, r)) return { ok: true };
  }
  const faults: string[] = [];
  for (const r of usable.filter((t) => t.usage === 2)) {
    for (let i = 1; i < chain.length; i++) {
      if (!associated(chain[i]!, r)) continue;
      const fault = taPathFault(chain.slice(0, i + 1), servername, now);
      if (!fault) return { ok: true };
      faults.push(fault.reason);
      if (fault.result !== 'tlsa-invalid') return fault;
    }
  }
  const why = faults.length ? `: ${faults.join('; ')}` : '';
  return { ok: false, reason: `no TLSA record of ${servername} matches the certificate chain${why}`, result: 'tlsa-invalid' };
}

type Fault = { ok: false; reason: string; result: 'tlsa-invalid' | 'certificate-host-mismatch' | 'certificate-expired' };

function taPathFault(path: readonly X509Certificate[], servername: string, now: number): Fault | undefined {
  for (let j = 0; j + 1 < path.length; j++) {
    const child = path[j]!;
    const parent = path[j + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      return { ok: false, reason: `"${child.subject.replace(/\n/g, ', ')}" is not signed by the matched trust anchor's chain`, result: 'tlsa-invalid' };
    }
  }
  const leaf = path[0]!;
  if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now) {
    return { ok: false, reason: `certificate valid ${leaf.validFrom} to ${leaf.validTo}`, result: 'certificate-expired' };
  }
  if (leaf.checkHost(servername) === undefined) {
    return { ok: false, reason: `certificate is not valid for ${servername}`, result: 'certificate-host-mismatch' };
  }
  return undefined;
}
