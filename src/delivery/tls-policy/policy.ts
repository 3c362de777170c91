// The outbound TLS policy (src/delivery/outbound-tls.ts): what each MX host of a recipient domain
// demands, decided in this order —
//   1. the operator's per-domain override (`outbound.tls.domains`), which replaces the rest;
//   2. DANE (RFC 7672), when the resolver validates DNSSEC and the host's TLSA RRset is secure —
//      it takes precedence over MTA-STS (RFC 8461 2);
//   3. MTA-STS (RFC 8461): enforce skips an MX the policy does not list and requires WebPKI;
//      testing checks the same but delivers anyway;
//   4. opportunistic STARTTLS.
// Every attempt the client reports goes to the TLS-RPT aggregate (RFC 8460).
import type { PeerCertificate } from 'node:tls';
import type { Resolver, TlsaRecord } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import type { HostTlsPolicy, OutboundTlsPolicy, TlsAttempt, TlsCheck, TlsResultType } from '../outbound-tls.js';
import type { OutboundTlsConfig } from './config.js';
import { checkWebPki } from './webpki.js';
import { checkDane, tlsaText } from './dane.js';
import { daneFor } from './dane-source.js';
import { createStsSource, type StsSource } from './sts-source.js';
import { mxMatches } from './sts-parse.js';

/** Where attempts and policy failures go (the TLS-RPT aggregate). */
export interface AttemptSink {
  record(attempt: TlsAttempt, details: PolicyDetails): void;
  /** A policy that could not be had (RFC 8460 4.3.2: sts-policy-fetch-error, …). */
  policyFailure(domain: string, result: TlsResultType, reason: string): void;
}

/** What TLS-RPT reports about the policy behind an attempt (RFC 8460 4.4 "policy"). */
export interface PolicyDetails {
  readonly policyDomain: string;
  readonly policyString: readonly string[];
  readonly mxHost: readonly string[];
}

export interface TlsPolicyOptions {
  readonly config: OutboundTlsConfig;
  readonly resolver: Resolver;
  readonly dataDir: string;
  readonly logger: Logger;
  /** True when `dns.dnssec_validating` declares the resolver validating (DANE needs it). */
  readonly dnssecValidating: boolean;
  /** Extra trust anchors (PEM) for WebPKI checks and policy fetches, e.g. a test CA. */
  readonly ca?: readonly string[];
  /** The HTTPS port of MTA-STS policy hosts (443; for tests). */
  readonly stsPort?: number;
  readonly sink?: AttemptSink;
  readonly now?: () => number;
}

export interface TlsPolicy extends OutboundTlsPolicy {
  /** The details reported for a policy returned by forHost (undefined for foreign objects). */
  details(policy: HostTlsPolicy): PolicyDetails | undefined;
}

export function createTlsPolicy(opts: TlsPolicyOptions): TlsPolicy {
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  const overrides = new Map(opts.config.domains.map((d) => [d.domain, d]));
  const details = new WeakMap<HostTlsPolicy, PolicyDetails>();
  const sts: StsSource | undefined = opts.config.mta_sts.enabled
    ? createStsSource({
      resolver: opts.resolver, dataDir: opts.dataDir, logger: log, ca: opts.ca, port: opts.stsPort, now,
      fetchTimeoutMs: opts.config.mta_sts.fetch_timeout, retryAfterMs: opts.config.mta_sts.retry_after,
      onFetchFailure: (domain, result, reason) => opts.sink?.policyFailure(domain, result, reason),
    })
    : undefined;
  const ca = opts.ca?.length ? { ca: opts.ca } : {};

  function make(p: Omit<HostTlsPolicy, 'check' | 'servername' | 'ca'> & { check?: HostTlsPolicy['check'] }, servername: string, d: PolicyDetails): HostTlsPolicy {
    const policy: HostTlsPolicy = { ...p, servername, ...ca, check: p.check ?? (() => ({ ok: true })) };
    details.set(policy, d);
    return policy;
  }

  const webpki = (servername: string) => (peer: PeerCertificate, authorized: boolean, err?: string): TlsCheck =>
    checkWebPki(servername, peer, authorized, err, now());

  async function decide(domain: string, host: string): Promise<HostTlsPolicy> {
    const plain: PolicyDetails = { policyDomain: domain, policyString: [], mxHost: [] };
    const override = overrides.get(domain);
    if (override) {
      const d: PolicyDetails = { ...plain, policyString: [`tls: ${override.tls}`, `verify: ${override.verify}`] };
      if (override.tls !== 'required') return make({ mode: override.tls, testing: false, policyType: 'config' }, host, d);
      if (override.verify === 'none') return make({ mode: 'required', testing: false, policyType: 'config' }, host, d);
      if (override.verify === 'webpki') return make({ mode: 'required', testing: false, policyType: 'config', check: webpki(host) }, host, d);
      // verify: dane — secure TLSA records are a must.
      const dane = opts.dnssecValidating ? await daneFor(opts.resolver, domain, host) : { kind: 'none' as const, reason: 'dns.dnssec_validating is not set' };
      if (dane.kind === 'tlsa') return daneHost(domain, host, dane.records, dane.usable, 'config');
      const reason = `DANE required for ${domain} by configuration: ${dane.reason}`;
      return make({ mode: 'required', testing: false, policyType: 'config', skip: { reason, result: dane.kind === 'failed' ? 'dnssec-invalid' : 'dane-required' } }, host, d);
    }
    if (opts.config.dane.enabled && opts.dnssecValidating) {
      const dane = await daneFor(opts.resolver, domain, host);
      if (dane.kind === 'tlsa') return daneHost(domain, host, dane.records, dane.usable, 'tlsa');
      if (dane.kind === 'failed') {
        return make({ mode: 'required', testing: false, policyType: 'tlsa', skip: { reason: dane.reason, result: 'dnssec-invalid' } }, host, { policyDomain: host, policyString: [], mxHost: [host] });
      }
    }
    if (sts) {
      const found = await sts.lookup(domain);
      if (found.kind === 'policy' && found.cached.policy.mode !== 'none') {
        const p = found.cached.policy;
        const d: PolicyDetails = { policyDomain: domain, policyString: p.lines, mxHost: p.mx };
        const testing = p.mode === 'testing';
        if (!mxMatches(p.mx, host)) {
          const reason = `${host} is not among the MX hosts of ${domain}'s MTA-STS policy (${p.mx.join(', ')})`;
          if (!testing) return make({ mode: 'required', testing, policyType: 'sts', skip: { reason, result: 'validation-failure' } }, host, d);
          // testing: report the mismatch on every attempt, deliver anyway (RFC 8461 5).
          return make({ mode: 'required', testing, policyType: 'sts', check: () => ({ ok: false, reason, result: 'validation-failure' }) }, host, d);
        }
        return make({ mode: 'required', testing, policyType: 'sts', check: webpki(host) }, host, d);
      }
    }
    return make({ mode: 'opportunistic', testing: false, policyType: 'no-policy-found' }, host, plain);
  }

  function daneHost(domain: string, host: string, records: readonly TlsaRecord[], usable: readonly TlsaRecord[], type: 'tlsa' | 'config'): HostTlsPolicy {
    const d: PolicyDetails = { policyDomain: host, policyString: records.map(tlsaText), mxHost: [host] };
    if (usable.length === 0) {
      // RFC 7672 2.2 and 3.1.3: a secure but unusable TLSA RRset still means mandatory TLS,
      // only without authentication.
      log.debug({ event: 'tls_policy.dane_unusable', domain, mx: host }, 'TLSA records present but none usable: encryption without authentication');
      return make({ mode: 'required', testing: false, policyType: type }, host, d);
    }
    return make({ mode: 'required', testing: false, policyType: type, check: (peer) => checkDane(usable, peer, host, now()) }, host, d);
  }

  return {
    async forHost(domain, mxHost) {
      const dom = domain.toLowerCase().replace(/\.$/, '');
      const host = mxHost.toLowerCase().replace(/\.$/, '');
      try {
        const policy = await decide(dom, host);
        log.debug({ event: 'tls_policy', domain: dom, mx: host, mode: policy.mode, type: policy.policyType, testing: policy.testing, skip: policy.skip?.reason }, 'outbound TLS policy');
        return policy;
      } catch (err) {
        // Never throws (the contract): a fault of our own leaves STARTTLS when offered.
        log.error({ event: 'tls_policy.error', domain: dom, mx: host, reason: (err as Error).message }, 'outbound TLS policy failed');
        return make({ mode: 'opportunistic', testing: false, policyType: 'no-policy-found' }, host, { policyDomain: dom, policyString: [], mxHost: [] });
      }
    },
    record(attempt) {
      const d = details.get(attempt.policy) ?? { policyDomain: attempt.domain, policyString: [], mxHost: [] };
      if (attempt.result !== 'success') {
        log.info({ event: 'tls_policy.failure', domain: attempt.domain, mx: attempt.mxHost, ip: attempt.receivingIp, result: attempt.result, detail: attempt.detail, type: attempt.policy.policyType }, 'outbound TLS attempt failed');
      }
      try {
        opts.sink?.record(attempt, d);
      } catch (err) {
        log.error({ event: 'tls_rpt.record_failed', reason: (err as Error).message }, 'could not record a TLS attempt');
      }
    },
    details: (policy) => details.get(policy),
  };
}
