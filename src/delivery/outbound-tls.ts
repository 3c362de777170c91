// The contract between the MX delivery client (direct delivery, src/delivery/mx*.ts) and the
// outbound TLS policy (per-domain overrides, MTA-STS RFC 8461, DANE RFC 7672, TLS-RPT RFC 8460:
// src/delivery/tls-policy/). The client asks before each connection what this MX host demands,
// checks the peer's certificate with the answer after STARTTLS, and reports every attempt's
// result, so that the policy module can write TLS-RPT aggregate reports.
//
// Why a contract of its own: which TLS a connection needs is decided from DNS (TLSA, the MX
// RRset's DNSSEC status, the _mta-sts TXT record) and HTTPS (the MTA-STS policy), none of which
// the SMTP client should know about; and the client's state machine is none of the policy's business.
import type { PeerCertificate } from 'node:tls';

/** RFC 8460 section 4.3 result types (plus "success"), as TLS-RPT reports name them. */
export type TlsResultType =
  | 'success'
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid'
  | 'dane-required'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

/** What one MX host of a domain demands of a connection, decided before connecting. */
export interface HostTlsPolicy {
  /**
   * 'none': never STARTTLS (an operator's `tls: none`).
   * 'opportunistic': STARTTLS when offered, any certificate accepted; a failed handshake may be
   *   retried in clear (RFC 7435), as Postfix's "may" level does.
   * 'required': STARTTLS must be offered and succeed and `check` must pass, else the attempt
   *   fails with the reason (a 4xx-class deferral: the next MX or a later retry).
   */
  readonly mode: 'none' | 'opportunistic' | 'required';
  /** SNI and the name a WebPKI certificate must carry (the MX host name, no trailing dot). */
  readonly servername: string;
  /** Trust anchors beyond the system's for WebPKI verification (PEM), e.g. a test CA. */
  readonly ca?: readonly string[];
  /**
   * MTA-STS in `testing` mode (RFC 8461 5): failures are reported but the message goes anyway,
   * in the clear if it must. The client then treats a failed `check` as opportunistic.
   */
  readonly testing: boolean;
  /** Where the policy came from, for logs and TLS-RPT: "sts", "tlsa", "config" or "no-policy-found". */
  readonly policyType: 'sts' | 'tlsa' | 'config' | 'no-policy-found';
  /**
   * Set when this MX must not be used at all (an MTA-STS policy in enforce mode whose `mx`
   * patterns do not match it, RFC 8461 4.1; or DANE required and the TLSA lookup failed).
   * The client skips the host and records this reason for the recipients.
   */
  readonly skip?: { readonly reason: string; readonly result: TlsResultType };
  /**
   * Checks the peer after the TLS handshake. `peer` is socket.getPeerCertificate(true) (the chain
   * through issuerCertificate); `authorized`/`authorizationError` are the socket's own WebPKI
   * verdict (with `ca` added to the trust store). The answer decides in 'required' mode and is
   * reported in every mode.
   */
  check(peer: PeerCertificate, authorized: boolean, authorizationError?: string): TlsCheck;
}

export type TlsCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly result: TlsResultType };

/** The outcome of one connection attempt to one MX host, reported by the client. */
export interface TlsAttempt {
  readonly domain: string;
  readonly mxHost: string;
  /** The IP address we connected to, and ours. */
  readonly receivingIp: string;
  readonly sendingIp: string;
  readonly policy: HostTlsPolicy;
  readonly result: TlsResultType;
  /** Free text for the report's failure-reason-code / the log. */
  readonly detail?: string;
}

export interface OutboundTlsPolicy {
  /**
   * The policy for one MX host of a recipient domain. Never throws: a DNS or HTTPS failure that
   * leaves no policy answers 'opportunistic' (or skip/required where the RFCs demand it).
   */
  forHost(domain: string, mxHost: string): Promise<HostTlsPolicy>;
  /** Records the outcome of an attempt (TLS-RPT aggregates them per policy domain per day). */
  record(attempt: TlsAttempt): void;
}

/** The policy when nothing else is configured: STARTTLS when offered, never required. */
export const opportunisticTls: OutboundTlsPolicy = {
  async forHost(_domain, mxHost) {
    return { mode: 'opportunistic', servername: mxHost.replace(/\.$/, ''), testing: false, policyType: 'no-policy-found', check: () => ({ ok: true }) };
  },
  record() {},
};
