// Direct delivery to a recipient domain's MX hosts (RFC 5321 section 5), for domains without a
// relay route. Per message and domain: resolve the MX hosts (mx-resolve.ts), then try their
// addresses best first until one takes the transaction.
//
// What moves on to the next address (as Postfix's smtp client decides): a connection that fails
// or times out, a greeting or EHLO refused, MAIL FROM answered 4xx, TLS the policy demands and
// the host cannot give, a session that breaks before the data went out. What does not: a
// recipient's own 4xx/5xx (another MX of the same domain answers for the same mailboxes), and
// anything after the data began (a second copy could be delivered twice) — those are outcomes.
//
// Sessions are pooled per address and reused across messages (at most
// max_connections_per_domain open per recipient domain, idle ones closed after idle_timeout);
// an address whose connection failed is marked down for host_down_delay so the other messages
// for it defer at once (Postfix's dead-host cache), instead of each waiting for its own timeout.
import net from 'node:net';
import os from 'node:os';
import type { Resolver } from '../dns/types.js';
import type { Logger } from '../log.js';
import { opportunisticTls, type HostTlsPolicy, type OutboundTlsPolicy } from './outbound-tls.js';
import { resolveMx, type MxTarget } from './mx-resolve.js';
import { SmtpClientError, SmtpSession, formatReply, type Reply, type TransactionResult } from './smtp-client.js';
import type { MxDeliveryConfig } from './mx-config.js';
import { deferred, failed, isSendable, outcomeOf, type Content, type RecipientOutcome } from './types.js';

export interface MxDeliveryOptions {
  readonly hostname: string;
  readonly config: MxDeliveryConfig;
  readonly resolver: Resolver;
  /** Addresses the gateway listens on: an MX on one of them is a mail loop. */
  readonly ownAddresses: readonly string[];
  readonly logger: Logger;
  readonly tls?: OutboundTlsPolicy;
  readonly random?: () => number;
}

export interface MxEnvelope {
  readonly from: string;
  readonly to: readonly string[];
  readonly body?: '7BIT' | '8BITMIME';
}

/**
 * The addresses that are us, from the listeners' bind addresses: a wildcard (0.0.0.0, ::)
 * stands for every address of every interface, as Postfix's inet_interfaces = all does.
 */
export function ownAddresses(bound: readonly string[]): string[] {
  const own = new Set(bound);
  if (bound.some((a) => a === '0.0.0.0' || a === '::')) {
    for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) own.add(i.address);
  }
  return [...own];
}

/** Down marks and per-domain pools kept before expired or empty ones are swept (bounded memory). */
const MAX_TRACKED = 10_000;

/** A pooled session probed with RSET when it sat idle longer than this (it may be stale). */
const PROBE_AFTER_IDLE = 2_000;

interface Pooled {
  readonly session: SmtpSession;
  readonly key: string;
  idleSince: number;
  timer?: NodeJS.Timeout;
}

interface DomainPool {
  /** Sessions open or opening for this domain (idle ones included). */
  live: number;
  idle: Pooled[];
  waiters: (() => void)[];
}

export class MxDelivery {
  private readonly cfg: MxDeliveryConfig;
  private readonly tls: OutboundTlsPolicy;
  private readonly pools = new Map<string, DomainPool>();
  private readonly down = new Map<string, { until: number; reason: string }>();
  private closed = false;

  constructor(private readonly opts: MxDeliveryOptions) {
    this.cfg = opts.config;
    this.tls = opts.tls ?? opportunisticTls;
  }

  /** One outcome per envelope.to entry, in order. Never throws. */
  async deliver(domainRaw: string, env: MxEnvelope, content: Content): Promise<RecipientOutcome[]> {
    const domain = domainRaw.toLowerCase();
    const log = this.opts.logger;
    const outcomes: (RecipientOutcome | undefined)[] = env.to.map(() => undefined);
    if (this.closed) return env.to.map(() => deferred('4.3.0 delivery is shutting down'));
    // What would break the command line (CR, LF, angle brackets) never reaches the wire.
    if (!isSendable(env.from, true)) return env.to.map(() => failed(`5.1.7 invalid envelope sender ${JSON.stringify(env.from)}`));
    env.to.forEach((a, i) => { if (!isSendable(a, false)) outcomes[i] = failed(`5.1.3 invalid recipient address ${JSON.stringify(a)}`); });
    if (outcomes.every(Boolean)) return outcomes as RecipientOutcome[];
    const plan = await resolveMx(domain, {
      resolver: this.opts.resolver, hostname: this.opts.hostname, ownAddresses: this.opts.ownAddresses,
      allowLoopback: this.cfg.allow_loopback_mx, maxHosts: this.cfg.max_mx_hosts, maxAddresses: this.cfg.max_mx_addresses,
      ipv6: this.cfg.ipv6, random: this.opts.random, logger: log,
    });
    if (plan.kind === 'fail') {
      log.info({ event: 'mx.no_destination', domain, reply: plan.reply }, `no destination for ${domain}`);
      return env.to.map(() => (plan.permanent ? failed(plan.reply) : deferred(plan.reply)));
    }
    const reasons: string[] = [];
    for (const host of plan.hosts) {
      const pending = outcomes.flatMap((o, i) => (o ? [] : [i]));
      if (!pending.length) break;
      const policy = await this.tls.forHost(domain, host.host);
      if (policy.skip) {
        reasons.push(`${host.host}: ${policy.skip.reason}`);
        this.record(domain, host, '', '', policy, policy.skip.result, policy.skip.reason);
        continue;
      }
      for (const address of host.addresses) {
        const still = outcomes.flatMap((o, i) => (o ? [] : [i]));
        if (!still.length) break;
        const attempt = await this.tryAddress(domain, host, address, policy, { ...env, to: still.map((i) => env.to[i]!) }, content);
        if (attempt.kind === 'next') {
          reasons.push(attempt.reason);
          continue;
        }
        attempt.outcomes.forEach((o, j) => { outcomes[still[j]!] = o; });
      }
    }
    const why = reasons.length ? reasons.slice(-3).join('; ') : `no MX host of ${domain} could be tried`;
    return outcomes.map((o) => o ?? deferred(`4.4.1 ${why}`));
  }

  /** Forgets which addresses were found down (`queue flush`). */
  forgetDownHosts(): void {
    this.down.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    const quits: Promise<void>[] = [];
    for (const pool of this.pools.values()) {
      for (const w of pool.waiters.splice(0)) w();
      for (const p of pool.idle.splice(0)) {
        clearTimeout(p.timer);
        pool.live -= 1;
        quits.push(p.session.quit());
      }
    }
    await Promise.all(quits);
  }

  // ---- one address -------------------------------------------------------------------------

  private async tryAddress(domain: string, host: MxTarget, address: string, policy: HostTlsPolicy, env: MxEnvelope, content: Content): Promise<
    { kind: 'next'; reason: string } | { kind: 'done'; outcomes: RecipientOutcome[] }
  > {
    const port = this.cfg.port;
    const key = `${address}|${port}`;
    const where = `${host.host}[${address}]:${port}`;
    const down = this.down.get(key);
    if (this.down.size > MAX_TRACKED) {
      for (const [k, v] of this.down) if (v.until <= Date.now()) this.down.delete(k);
    }
    if (down && down.until > Date.now()) return { kind: 'next', reason: `${where}: not tried again yet: ${down.reason}` };
    for (let attempt = 1; attempt <= 2; attempt++) {
      let lease: { session: SmtpSession; reused: boolean };
      try {
        lease = await this.acquire(domain, key, host, address, policy, attempt > 1);
      } catch (err) {
        const e = err as SmtpClientError;
        const reason = e.reply ? `host ${where} said: ${formatReply(e.reply)} (in reply to ${e.stage})` : e.message;
        if (e.kind === 'network' || e.kind === 'timeout') {
          this.down.set(key, { until: Date.now() + this.cfg.host_down_delay, reason: e.message });
        }
        this.opts.logger.info({ event: 'mx.connect_failed', domain, mx: host.host, address, reason }, `cannot deliver to ${where}`);
        return { kind: 'next', reason };
      }
      this.down.delete(key);
      const r = await lease.session.send(env, content);
      const verdict = judge(r, env.to.length, where);
      this.release(domain, key, lease.session, !r.broken);
      if (verdict.kind === 'next' && lease.reused && r.broken && !r.mail) continue; // a stale pooled session: once more, fresh
      if (verdict.kind === 'done') {
        this.opts.logger.debug({ event: 'mx.transaction', domain, mx: host.host, address, tls: lease.session.tls.secure }, 'transaction done');
      }
      return verdict;
    }
    return { kind: 'next', reason: `${where}: connection lost` };
  }

  private async acquire(domain: string, key: string, host: MxTarget, address: string, policy: HostTlsPolicy, fresh: boolean): Promise<{ session: SmtpSession; reused: boolean }> {
    const pool = this.poolFor(domain);
    for (;;) {
      if (this.closed) throw new SmtpClientError('delivery is shutting down', 'network', 'connect');
      if (!fresh) {
        const i = pool.idle.findIndex((p) => p.key === key);
        if (i >= 0) {
          const [p] = pool.idle.splice(i, 1);
          clearTimeout(p!.timer);
          const s = p!.session;
          if (!s.isClosed && (!s.needsReset && Date.now() - p!.idleSince <= PROBE_AFTER_IDLE || await s.reset())) return { session: s, reused: true };
          s.close();
          pool.live -= 1;
          continue;
        }
      }
      if (pool.live >= this.cfg.max_connections_per_domain && pool.idle.length) {
        // make room: an idle connection to another host of this domain is the cheapest to give up
        const p = pool.idle.shift()!;
        clearTimeout(p.timer);
        pool.live -= 1;
        void p.session.quit();
      }
      if (pool.live < this.cfg.max_connections_per_domain) break;
      await new Promise<void>((resolve) => pool.waiters.push(resolve));
    }
    pool.live += 1;
    try {
      return { session: await this.open(domain, host, address, policy), reused: false };
    } catch (err) {
      pool.live -= 1;
      pool.waiters.shift()?.();
      throw err;
    }
  }

  /** A new session; opportunistic TLS whose handshake fails is retried once in clear (RFC 7435). */
  private async open(domain: string, host: MxTarget, address: string, policy: HostTlsPolicy): Promise<SmtpSession> {
    const v6 = net.isIPv6(address);
    const base = {
      address, port: this.cfg.port, host: host.host, hostname: this.opts.hostname, tls: policy,
      localAddress: v6 ? this.cfg.source_ipv6 : this.cfg.source_ipv4,
      timeouts: { connect: this.cfg.connect_timeout, greeting: this.cfg.greeting_timeout, command: this.cfg.command_timeout, dataDone: this.cfg.data_timeout },
    };
    try {
      const s = await SmtpSession.open(base);
      if (policy.mode !== 'none') this.record(domain, host, address, s.localAddress, policy, s.tls.result ?? 'success', s.tls.detail);
      if (s.tls.result && s.tls.result !== 'success') {
        this.opts.logger.info({ event: 'mx.tls_not_verified', domain, mx: host.host, result: s.tls.result, detail: s.tls.detail }, `TLS to ${host.host}: ${s.tls.result}`);
      }
      return s;
    } catch (err) {
      const e = err as SmtpClientError;
      if (e.kind !== 'tls') throw err;
      this.record(domain, host, address, '', policy, e.tlsResult ?? 'validation-failure', e.message);
      const clearAllowed = policy.mode === 'opportunistic' || policy.testing;
      if (!clearAllowed || e.stage !== 'TLS handshake') throw err;
      this.opts.logger.warn({ event: 'mx.tls_fallback', domain, mx: host.host, address, reason: e.message }, 'STARTTLS failed, delivering without TLS');
      return await SmtpSession.open({ ...base, skipStartTls: true });
    }
  }

  private release(domain: string, key: string, s: SmtpSession, reusable: boolean): void {
    const pool = this.poolFor(domain);
    if (!reusable || s.isClosed || this.closed) {
      s.close();
      pool.live -= 1;
      pool.waiters.shift()?.();
      return;
    }
    const p: Pooled = { session: s, key, idleSince: Date.now() };
    p.timer = setTimeout(() => {
      const i = pool.idle.indexOf(p);
      if (i < 0) return;
      pool.idle.splice(i, 1);
      pool.live -= 1;
      void s.quit();
    }, this.cfg.idle_timeout);
    p.timer.unref();
    pool.idle.push(p);
    pool.waiters.shift()?.();
  }

  private poolFor(domain: string): DomainPool {
    let pool = this.pools.get(domain);
    if (!pool) {
      if (this.pools.size > MAX_TRACKED) {
        for (const [d, p] of this.pools) if (p.live === 0 && !p.waiters.length) this.pools.delete(d);
      }
      pool = { live: 0, idle: [], waiters: [] };
      this.pools.set(domain, pool);
    }
    return pool;
  }

  private record(domain: string, host: MxTarget, receivingIp: string, sendingIp: string, policy: HostTlsPolicy, result: Parameters<OutboundTlsPolicy['record']>[0]['result'], detail?: string): void {
    try {
      this.tls.record({ domain, mxHost: host.host, receivingIp, sendingIp, policy, result, detail });
    } catch (err) {
      this.opts.logger.warn({ event: 'mx.tls_record_failed', err: (err as Error).message }, 'TLS policy could not record an attempt');
    }
  }
}

// ---- outcomes ----------------------------------------------------------------------------

/** What the replies of one transaction mean for each recipient (Postfix-style reply texts). */
function judge(r: TransactionResult, count: number, where: string): { kind: 'next'; reason: string } | { kind: 'done'; outcomes: RecipientOutcome[] } {
  const said = (reply: Reply, stage: string) => `host ${where} said: ${formatReply(reply)} (in reply to ${stage})`;
  if (r.refused) return { kind: 'done', outcomes: new Array(count).fill(failed(r.refused)) };
  // the session broke before the data went out, and not after a recipient's final answer: the next MX
  if (r.broken && !r.dataSent && !(r.mail && r.rcpt.every(Boolean) && r.data)) return { kind: 'next', reason: r.broken.message };
  if (!r.mail) return { kind: 'next', reason: r.broken?.message ?? `${where}: no reply to MAIL` };
  if (r.mail.code >= 400 && r.mail.code < 500) return { kind: 'next', reason: said(r.mail, 'MAIL FROM') };
  if (r.mail.code !== 250) return { kind: 'done', outcomes: new Array(count).fill(outcomeOf(r.mail.code, said(r.mail, 'MAIL FROM'))) };
  let accepted = 0;
  const outcomes = r.rcpt.map((reply): RecipientOutcome => {
    if (!reply) return deferred(`4.4.2 ${where}: no reply to RCPT TO`);
    if (reply.code < 200 || reply.code >= 300) return outcomeOf(reply.code, said(reply, 'RCPT TO'));
    const done = r.done.length > 1 ? r.done[accepted] : r.done[0];
    accepted += 1;
    if (r.data && r.data.code !== 354) return outcomeOf(r.data.code, said(r.data, 'DATA'));
    if (r.broken) return deferred(`4.4.2 ${r.broken.message}${r.dataSent ? ' (after the data began; not tried elsewhere to avoid duplicates)' : ''}`);
    if (!done) return deferred(`4.4.2 ${where}: no reply after the data`);
    return outcomeOf(done.code, said(done, 'end of DATA'));
  });
  return { kind: 'done', outcomes };
}
