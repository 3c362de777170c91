// The TLS probe of one endpoint (implicit TLS or STARTTLS/STLS): a handshake as a modern client
// makes it (TLS 1.2+, default suites) to read the protocol, the suite and the certificate chain,
// then one handshake per thing a server should refuse: TLS 1.0 only, TLS 1.1 only, anonymous
// suites only (no certificate: a man in the middle needs nothing), NULL suites only (no
// encryption), static-RSA key exchange only (no forward secrecy).
//
// What Node's OpenSSL can offer decides what can be probed. Node 20 bundles OpenSSL 3, which
// still speaks TLS 1.0/1.1 when asked with "@SECLEVEL=0", and can offer aNULL, eNULL and kRSA
// suites; it has no RC4, DES, 3DES or EXPORT suites at all ("no cipher match"), so those are not
// probed (a dedicated scanner such as testssl.sh does that). SSLv3 and SSLv2 cannot be offered.
import tls from 'node:tls';
import { ProbeError } from './dialogue.js';
import { cleanEvidence, type Finding, type Severity } from './findings.js';
import { dialogueOptions, endpointLabel, inspectingTls, serverName, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding } from './probe-findings.js';
import { goodbye, openTls } from './protocols.js';

export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  /** subjectAltName entries, else the subject CN. */
  readonly names: readonly string[];
  readonly validFrom: string;
  readonly validTo: string;
  readonly bits?: number;
  readonly keyType: 'RSA' | 'EC' | 'other';
  readonly fingerprint256: string;
  /** Subject → issuer of every certificate the server sent, leaf first. */
  readonly chain: readonly string[];
  /** Node's verdict against its bundled roots (plus --ca). */
  readonly trusted: boolean;
  readonly trustError?: string;
  /** Why the certificate does not name the host probed (undefined: it does, or an address was probed). */
  readonly nameError?: string;
}

export type Attempt =
  | { readonly kind: 'accepted'; readonly protocol: string; readonly cipher: string }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'inconclusive'; readonly reason: string; readonly error?: unknown }
  | { readonly kind: 'unprobed'; readonly reason: string };

export interface TlsFacts {
  readonly attempts: Readonly<Record<AttemptName, Attempt>>;
  readonly certificate?: CertificateSummary;
}

export type AttemptName = 'modern' | 'tls1.0' | 'tls1.1' | 'anonymous' | 'null' | 'static-rsa';

const ATTEMPTS: readonly { name: AttemptName; label: string; options: tls.ConnectionOptions }[] = [
  { name: 'modern', label: 'TLS 1.2+ with default suites', options: { minVersion: 'TLSv1.2' } },
  { name: 'tls1.0', label: 'TLS 1.0 only', options: { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'ALL:@SECLEVEL=0' } },
  { name: 'tls1.1', label: 'TLS 1.1 only', options: { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ALL:@SECLEVEL=0' } },
  { name: 'anonymous', label: 'anonymous suites only (aNULL)', options: { minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'aNULL:!eNULL:@SECLEVEL=0' } },
  { name: 'null', label: 'NULL-encryption suites only (eNULL)', options: { minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'eNULL:@SECLEVEL=0' } },
  { name: 'static-rsa', label: 'static RSA key exchange only (no forward secrecy)', options: { minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'kRSA:@SECLEVEL=0' } },
];

/** Days before expiry from which the certificate is a warning. */
export const EXPIRY_WARNING_DAYS = 14;

export async function probeTls(e: Endpoint, ctx: ProbeContext): Promise<{ facts: TlsFacts; findings: Finding[] }> {
  const target = endpointLabel(e);
  const attempts = {} as Record<AttemptName, Attempt>;
  let certificate: CertificateSummary | undefined;
  for (const a of ATTEMPTS) {
    if (ctx.signal?.aborted) {
      attempts[a.name] = { kind: 'inconclusive', reason: 'the probe ran out of time' };
      continue;
    }
    attempts[a.name] = await attempt(e, ctx, a.options, (socket) => {
      certificate ??= summarize(socket, e);
    });
  }
  return { facts: { attempts, certificate }, findings: judge(e, target, attempts, certificate, ctx.now()) };
}

async function attempt(e: Endpoint, ctx: ProbeContext, options: tls.ConnectionOptions, inspect: (s: tls.TLSSocket) => void): Promise<Attempt> {
  try {
    // Whether this OpenSSL can offer the suites at all (throws "no cipher match" otherwise).
    tls.createSecureContext({ ciphers: options.ciphers, minVersion: options.minVersion, maxVersion: options.maxVersion });
  } catch (err) {
    return { kind: 'unprobed', reason: `this client cannot offer it (${(err as Error).message.replace(/^error:[0-9A-F]+:[^:]*::?/, '')})` };
  }
  let d;
  try {
    d = await openTls(e.service.protocol, e.service.tls === 'implicit', dialogueOptions(e, ctx), inspectingTls(e, ctx, options), ctx.heloName);
  } catch (err) {
    if (err instanceof ProbeError && err.kind === 'tls') return { kind: 'refused', reason: err.message };
    return { kind: 'inconclusive', reason: err instanceof Error ? err.message : String(err), error: err };
  }
  const socket = d.tlsSocket!;
  const result: Attempt = { kind: 'accepted', protocol: socket.getProtocol() ?? '?', cipher: socket.getCipher()?.standardName ?? socket.getCipher()?.name ?? '?' };
  try {
    inspect(socket);
  } finally {
    await goodbye(d, e.service.protocol);
  }
  return result;
}

function summarize(socket: tls.TLSSocket, e: Endpoint): CertificateSummary | undefined {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return undefined;
  const chain: string[] = [];
  const seen = new Set<string>();
  for (let c: tls.DetailedPeerCertificate | undefined = leaf; c && c.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(`${dn(c.subject)} ← issued by ${dn(c.issuer)} (until ${c.valid_to})`);
  }
  const names = (leaf.subjectaltname ?? '').split(/,\s*/).map((n) => n.replace(/^(DNS|IP Address):/, '')).filter(Boolean);
  const cn = typeof leaf.subject?.CN === 'string' ? leaf.subject.CN : undefined;
  const authError = socket.authorizationError ? String(socket.authorizationError) : undefined;
  const host = serverName(e);
  const nameError = host ? tls.checkServerIdentity(host, leaf)?.message : undefined;
  return {
    subject: dn(leaf.subject), issuer: dn(leaf.issuer), names: names.length ? names : cn ? [cn] : [],
    validFrom: leaf.valid_from, validTo: leaf.valid_to, bits: leaf.bits,
    keyType: leaf.modulus ? 'RSA' : leaf.asn1Curve || leaf.nistCurve ? 'EC' : 'other',
    fingerprint256: leaf.fingerprint256, chain, trusted: socket.authorized, trustError: authError, nameError,
  };
}

function dn(subject: tls.Certificate | undefined): string {
  if (!subject) return '?';
  return Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`).join(', ') || '(empty)';
}

function describe(name: AttemptName, a: Attempt): string {
  const label = ATTEMPTS.find((x) => x.name === name)!.label;
  switch (a.kind) {
    case 'accepted': return `${label}: accepted, ${a.protocol} ${a.cipher}`;
    case 'refused': return `${label}: refused (${a.reason})`;
    case 'inconclusive': return `${label}: not determined (${a.reason})`;
    case 'unprobed': return `${label}: not probed, ${a.reason}`;
  }
}

function certLines(c: CertificateSummary): string[] {
  return [
    `certificate: ${c.subject}`,
    `  names: ${c.names.join(', ') || '(none)'}`,
    `  valid: ${c.validFrom} → ${c.validTo}`,
    `  key: ${c.keyType}${c.bits ? ` ${c.bits} bits` : ''}; sha256 ${c.fingerprint256}`,
    `  trust: ${c.trusted ? 'verified against the trusted roots' : `not verified (${c.trustError ?? 'unknown'})`}`,
    '  chain:',
    ...c.chain.map((l) => `    ${l}`),
  ];
}

function judge(e: Endpoint, target: string, attempts: Record<AttemptName, Attempt>, cert: CertificateSummary | undefined, now: number): Finding[] {
  const user = e.service.userFacing;
  const serious: Severity = user ? 'critical' : 'warning';
  const findings: Finding[] = [];
  const summary = (ATTEMPTS.map((a) => describe(a.name, attempts[a.name]))).join('\n');
  const evidence = (extra: string[] = []) => cleanEvidence([...extra, summary].join('\n'));
  const modern = attempts.modern;
  const legacy = (['tls1.0', 'tls1.1'] as const).filter((n) => attempts[n].kind === 'accepted');

  if (modern.kind === 'inconclusive' && legacy.length === 0) {
    // No handshake could even be tried (the service vanished, STARTTLS refused…).
    return [failureFinding(e, modern.error ?? new ProbeError('error', modern.reason))];
  }
  if (modern.kind === 'accepted') {
    findings.push({ code: 'TLS_OK', area: 'encryption', severity: 'ok', target, evidence: evidence(cert ? certLines(cert) : []), title: `TLS works: ${modern.protocol}, ${modern.cipher}` });
  } else if (legacy.length) {
    findings.push({
      code: 'TLS_NO_MODERN_VERSION', area: 'encryption', severity: serious, target, evidence: evidence(),
      title: 'Only TLS versions below 1.2 work', fix: 'Upgrade the TLS library or configuration to support TLS 1.2 and 1.3.',
    });
  } else {
    findings.push({
      code: 'TLS_HANDSHAKE_FAILED', area: 'encryption', severity: serious, target, evidence: evidence(),
      title: 'The TLS handshake fails', fix: 'Fix the TLS configuration (certificate, key, protocol versions) so that modern clients can connect.',
    });
  }

  if (legacy.length) {
    findings.push({
      code: 'TLS_LEGACY_VERSIONS', area: 'encryption', severity: 'warning', target, evidence: evidence(),
      title: `Accepts ${legacy.map((n) => (n === 'tls1.0' ? 'TLS 1.0' : 'TLS 1.1')).join(' and ')} (deprecated by RFC 8996)`,
      fix: 'Set the minimum protocol to TLS 1.2 (Postfix: smtpd_tls_protocols = >=TLSv1.2; Dovecot: ssl_min_protocol = TLSv1.2).',
    });
  }
  if (attempts.null.kind === 'accepted') {
    findings.push({
      code: 'TLS_NULL_CIPHER', area: 'encryption', severity: serious, target, evidence: evidence(),
      title: `Accepts a suite without encryption (${attempts.null.cipher})`, fix: 'Remove eNULL suites from the cipher list.',
    });
  }
  if (attempts.anonymous.kind === 'accepted') {
    findings.push({
      code: 'TLS_ANONYMOUS_CIPHER', area: 'encryption', severity: user ? 'warning' : 'info', target, evidence: evidence(),
      title: `Accepts an anonymous suite without a certificate (${attempts.anonymous.cipher})`,
      fix: user ? 'Remove aNULL suites from the cipher list: a man in the middle needs no certificate with them.' : 'Exclude aNULL suites (Postfix: smtpd_tls_exclude_ciphers = aNULL) unless opportunistic anonymous TLS is intended.',
    });
  }
  if (attempts['static-rsa'].kind === 'accepted') {
    findings.push({
      code: 'TLS_NO_FORWARD_SECRECY', area: 'encryption', severity: 'info', target, evidence: evidence(),
      title: `Accepts static-RSA key exchange without forward secrecy (${attempts['static-rsa'].cipher})`,
      fix: 'Prefer ECDHE suites and drop kRSA ones once old clients are gone.',
    });
  }

  if (cert) findings.push(...certificateFindings(e, target, cert, serious, now, evidence(certLines(cert))));
  return findings;
}

function certificateFindings(e: Endpoint, target: string, cert: CertificateSummary, serious: Severity, now: number, evidence: string): Finding[] {
  const out: Finding[] = [];
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  if (Number.isFinite(notAfter) && notAfter < now) {
    out.push({
      code: 'TLS_CERT_EXPIRED', area: 'encryption', severity: serious, target, evidence,
      title: `The certificate expired on ${new Date(notAfter).toISOString().slice(0, 10)}`, fix: 'Renew the certificate and reload the service (automate it, e.g. with ACME).',
    });
  } else if (Number.isFinite(notBefore) && notBefore > now) {
    out.push({
      code: 'TLS_CERT_NOT_YET_VALID', area: 'encryption', severity: serious, target, evidence,
      title: `The certificate is not valid before ${new Date(notBefore).toISOString().slice(0, 10)}`, fix: 'Check the server clock and the certificate dates.',
    });
  } else if (Number.isFinite(notAfter) && notAfter - now < EXPIRY_WARNING_DAYS * 86_400_000) {
    out.push({
      code: 'TLS_CERT_EXPIRES_SOON', area: 'encryption', severity: 'warning', target, evidence,
      title: `The certificate expires in ${Math.max(0, Math.floor((notAfter - now) / 86_400_000))} day(s)`, fix: 'Renew the certificate now (and automate renewal).',
    });
  }
  const dateErrors = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
  if (!cert.trusted && !(cert.trustError && dateErrors.has(cert.trustError))) {
    out.push({
      code: 'TLS_CERT_UNTRUSTED', area: 'encryption', severity: serious, target, evidence,
      title: `The certificate is not trusted (${cert.trustError ?? 'unknown reason'})`,
      fix: 'Use a certificate from a public CA (e.g. Let\'s Encrypt) and send the full chain.',
    });
  }
  if (cert.nameError) {
    const host = serverName(e)!;
    out.push({
      code: 'TLS_CERT_NAME_MISMATCH', area: 'encryption', severity: serious, target, evidence: cleanEvidence(`${cert.nameError}\n${evidence}`),
      title: `The certificate does not name ${host}`, fix: `Get a certificate that includes ${host} in its subjectAltName.`,
    });
  }
  if (cert.keyType === 'RSA' && cert.bits !== undefined && cert.bits < 2048) {
    out.push({
      code: 'TLS_WEAK_KEY', area: 'encryption', severity: 'warning', target, evidence,
      title: `The certificate's RSA key has only ${cert.bits} bits`, fix: 'Issue a new certificate with an RSA key of 2048 bits or more, or an ECDSA key.',
    });
  }
  if (!out.length) out.push({ code: 'TLS_CERT_OK', area: 'encryption', severity: 'ok', target, evidence, title: `The certificate is valid until ${cert.validTo}` });
  return out;
}
