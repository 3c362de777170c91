// Fetching an MTA-STS policy (RFC 8461 3.3): GET https://mta-sts.<domain>/.well-known/mta-sts.txt
// with a certificate valid for mta-sts.<domain> (WebPKI), no redirects followed, a 200 with
// text/plain, at most 64 KiB, all within one deadline. The host is resolved through the gateway's
// resolver (so tests and operators' split DNS see the same answers as the MX lookups).
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Resolver } from '../../dns/types.js';

/** RFC 8461 3.3 suggests this bound on the policy body. */
export const MAX_POLICY_BYTES = 64 * 1024;

export interface FetchOptions {
  readonly resolver: Resolver;
  readonly timeoutMs: number;
  /** Extra trust anchors (PEM) beside the system's, e.g. a test CA. */
  readonly ca?: readonly string[];
  /** The HTTPS port; 443 except in tests that cannot bind it. */
  readonly port?: number;
}

export type FetchResult =
  | { readonly ok: true; readonly body: string }
  /** `webpki`: the certificate failed (RFC 8460 sts-webpki-invalid), else a fetch error. */
  | { readonly ok: false; readonly reason: string; readonly webpki: boolean };

export async function fetchStsPolicy(domain: string, opts: FetchOptions): Promise<FetchResult> {
  const host = `mta-sts.${domain}`;
  const deadline = Date.now() + opts.timeoutMs;
  const address = await resolveHost(host, opts.resolver);
  if (!address.ok) return { ok: false, reason: address.reason, webpki: false };
  const left = deadline - Date.now();
  if (left <= 0) return { ok: false, reason: `${host}: timed out resolving`, webpki: false };
  return get(host, address.ip, left, opts);
}

async function resolveHost(host: string, resolver: Resolver): Promise<{ ok: true; ip: string } | { ok: false; reason: string }> {
  const reasons: string[] = [];
  for (const type of ['A', 'AAAA'] as const) {
    const l = await resolver.lookup(host, type);
    if (l.status === 'ok' && l.records.length > 0) return { ok: true, ip: l.records[0]! };
    reasons.push(`${type} ${l.status === 'error' ? l.reason : l.status}`);
  }
  return { ok: false, reason: `${host}: no address (${reasons.join(', ')})` };
}

function get(host: string, ip: string, timeoutMs: number, opts: FetchOptions): Promise<FetchResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: FetchResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    // Node replaces the system roots when `ca` is given: keep them and add the operator's.
    const ca = opts.ca?.length ? [...tls.rootCertificates, ...opts.ca] : undefined;
    const req = https.request({
      host: ip,
      port: opts.port ?? 443,
      family: net.isIPv6(ip) ? 6 : 4,
      servername: host, // SNI, and the name the certificate is checked against
      path: '/.well-known/mta-sts.txt',
      method: 'GET',
      headers: { host, accept: 'text/plain', 'user-agent': 'portcullis-mta-sts' },
      agent: false,
      ca,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    }, (res) => {
      if (res.statusCode !== 200) {
        // 3xx included: "HTTP 3xx redirects MUST NOT be followed" (3.3).
        const where = res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location ? ` (redirect to ${res.headers.location} not followed)` : '';
        finish({ ok: false, reason: `${host}: HTTP ${res.statusCode}${where}`, webpki: false });
        return;
      }
      const type = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'text/plain') {
        finish({ ok: false, reason: `${host}: content-type "${res.headers['content-type'] ?? ''}" is not text/plain`, webpki: false });
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > MAX_POLICY_BYTES) {
        finish({ ok: false, reason: `${host}: policy of ${declared} bytes exceeds ${MAX_POLICY_BYTES}`, webpki: false });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_POLICY_BYTES) {
          finish({ ok: false, reason: `${host}: policy exceeds ${MAX_POLICY_BYTES} bytes`, webpki: false });
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => finish({ ok: true, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => finish({ ok: false, reason: `${host}: ${err.message}`, webpki: false }));
    });
    const timer = setTimeout(() => finish({ ok: false, reason: `${host}: no complete answer within ${timeoutMs} ms`, webpki: false }), timeoutMs);
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      finish({ ok: false, reason: `${host}: ${err.message}`, webpki: isCertificateError(code) });
    });
    req.end();
  });
}

const CERT_CODES = /^(ERR_TLS_CERT_ALTNAME_INVALID|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|UNABLE_TO_GET_ISSUER|HOSTNAME_MISMATCH)/;
export function isCertificateError(code: string): boolean {
  return CERT_CODES.test(code);
}
