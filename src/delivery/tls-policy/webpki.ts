// The WebPKI check of an MX certificate (MTA-STS enforce/testing, RFC 8461 4.2, and the operator's
// `verify: webpki`): a chain to a trusted root (the socket's own verdict, with the policy's `ca`
// added), a name matching the MX host, and dates that hold. The name and dates are checked here
// too, so the answer does not depend on which servername the client happened to give the socket
// and the TLS-RPT result type names the real fault.
import tls, { type PeerCertificate } from 'node:tls';
import type { TlsCheck } from '../outbound-tls.js';

export function checkWebPki(servername: string, peer: PeerCertificate, authorized: boolean, authorizationError: string | undefined, now = Date.now()): TlsCheck {
  if (!peer || !peer.raw) return { ok: false, reason: 'the server sent no certificate', result: 'certificate-not-trusted' };
  const notAfter = Date.parse(peer.valid_to);
  const notBefore = Date.parse(peer.valid_from);
  if (Number.isFinite(notAfter) && notAfter < now) return { ok: false, reason: `certificate expired on ${peer.valid_to}`, result: 'certificate-expired' };
  if (Number.isFinite(notBefore) && notBefore > now) return { ok: false, reason: `certificate not valid before ${peer.valid_from}`, result: 'certificate-expired' };
  const mismatch = tls.checkServerIdentity(servername, peer);
  if (mismatch) return { ok: false, reason: `certificate is not valid for ${servername}: ${mismatch.message}`, result: 'certificate-host-mismatch' };
  if (!authorized) {
    const code = authorizationError ?? 'not verified';
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return { ok: false, reason: `certificate ${code}`, result: 'certificate-expired' };
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { ok: false, reason: `certificate is not valid for ${servername}`, result: 'certificate-host-mismatch' };
    return { ok: false, reason: `certificate not trusted: ${code}`, result: 'certificate-not-trusted' };
  }
  return { ok: true };
}
