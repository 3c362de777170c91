// What a Postfix policy request is asked, and what we answer: the request's attributes become
// the ConnectionFacts and envelope the SMTP session would have built (src/smtp/session.ts), the
// gateway's CheckRunner runs the connect, helo, mail and rcpt stages, and the outcome becomes
// one action (docs/integrations.md has the table):
//   a refusal                     → "550 5.7.1 text": the reply, word for word, our SMTP path sends
//   a check that could not run    → "DEFER_IF_PERMIT 4.7.1 text" (CHECK_TEMPFAIL: a later reject
//                                    still wins; Postfix defers only what it would have accepted)
//   another tempfail, a rate limit → "451 4.7.1 text" / "450 4.7.1 text", as the session answers
//   nothing against it            → "DUNNO", or "PREPEND X-Portcullis-Policy: ..." with the
//                                    scored symbols, once per transaction (prepend_header)
//   DATA, END-OF-MESSAGE, VRFY, ETRN, anything unknown or malformed → "DUNNO"
//
// A Postfix smtpd process serves one SMTP session at a time and keeps its policy connection
// across them, so each policy connection remembers one session: the connect and HELO checks
// run once per SMTP session (client address and port; again for a new HELO name), the MAIL
// checks once per transaction (Postfix's `instance` attribute, with the sender), whatever
// the number of requests (one per restriction list and recipient) that ask about them. As in
// the session, refusals found at connect, HELO or MAIL are answered at RCPT when Postfix asks
// there (smtpd_delay_reject), and an authenticated client (sasl_username) is not held to them.
import net from 'node:net';
import type { ConnectionFacts, Demand, Facts, ScoredSymbol, Stage, StageInput } from '../checks/types.js';
import type { StageOutcome } from '../pipeline/runner.js';
import { replyLine, type Reply } from '../protocol/reply.js';
import type { PolicyService } from './policy-service.js';
import { printable } from './service.js';

/** An answer and the words for its log line and counter. */
export interface PolicyAnswer {
  readonly action: string;
  readonly outcome: 'dunno' | 'prepend' | 'reject' | 'defer' | 'malformed' | 'error';
  readonly symbols: readonly ScoredSymbol[];
  readonly why?: string;
}

/** Postfix's protocol_state values we judge, in SMTP order. */
const ORDER = { CONNECT: 0, EHLO: 1, HELO: 1, MAIL: 2, RCPT: 3 } as const;
type JudgedState = keyof typeof ORDER;

interface Session {
  readonly key: string;
  connect?: Promise<StageOutcome>;
  heloName?: string;
  helo?: Promise<StageOutcome>;
  txKey?: string;
  mail?: Promise<StageOutcome>;
  /** The transaction whose message rate was counted / whose header was prepended. */
  countedTx?: string;
  prependedTx?: string;
}

const one = (reply: Reply) => replyLine(reply);

export class PostfixPolicyJudge {
  private session?: Session;

  constructor(
    private readonly service: PolicyService,
    private readonly listener: { name: string; prepend_header: boolean },
  ) {}

  async judge(attrs: ReadonlyMap<string, string>): Promise<PolicyAnswer> {
    const dunno = (why: string): PolicyAnswer => ({ action: 'DUNNO', outcome: 'malformed', symbols: [], why });
    const request = attrs.get('request');
    if (request !== 'smtpd_access_policy') return dunno(`request=${printable(request ?? '(none)', 40)} is not smtpd_access_policy`);
    const state = (attrs.get('protocol_state') ?? '').toUpperCase();
    if (!(state in ORDER)) return { action: 'DUNNO', outcome: 'dunno', symbols: [], why: `nothing to judge at ${printable(state || '(no protocol_state)', 20)}` };
    const client = clientIp(attrs.get('client_address'));
    if (!client) return dunno(`client_address ${printable(attrs.get('client_address') ?? '(none)', 60)} is not an IP address`);
    try {
      return await this.decide(state as JudgedState, client, attrs);
    } catch (err) {
      // The state store cannot be read (limits) or a stage failed outside its checks: ours to
      // fix, never a reason to refuse mail that a later restriction would refuse anyway.
      this.service.logger.error({ event: 'policy_error', listener: this.listener.name, err: (err as Error).message }, 'policy check failed');
      this.session = undefined;
      return { action: 'DEFER_IF_PERMIT 4.3.0 Error: temporary failure in the policy check, try again later', outcome: 'error', symbols: [], why: (err as Error).message };
    }
  }

  private async decide(state: JudgedState, client: string, attrs: ReadonlyMap<string, string>): Promise<PolicyAnswer> {
    const s = this.sessionFor(client, attrs);
    const conn = connectionFacts(this.listener.name, client, attrs, this.service.trusted(client));
    const symbols: ScoredSymbol[] = [];
    const refuse = (d: Demand): PolicyAnswer => ({
      action: d.kind === 'tempfail' && d.symbol === 'CHECK_TEMPFAIL' ? `DEFER_IF_PERMIT ${d.reply.enhanced ?? '4.7.1'} ${d.reply.text}` : one(d.reply),
      outcome: d.kind === 'reject' ? 'reject' : 'defer', symbols, why: d.symbol,
    });
    const limited = (r: Reply, why: string): PolicyAnswer => ({ action: one(r), outcome: 'defer', symbols, why });

    // connect: once per SMTP session; the connection rate counted then too.
    if (!s.connect) {
      if (!conn.trustedNetwork) {
        const refused = await this.service.limits.admit(client);
        // Postfix holds the connection, not us: counted for the rate, not for the concurrency.
        if (!refused) this.service.limits.release(client);
        else {
          s.connect = Promise.resolve({ symbols: [], wouldRefuse: [], facts: {}, authResults: [], trace: [], demand: { kind: 'tempfail', reply: { ...refused, code: 451 } } });
        }
      }
      s.connect ??= this.run('connect', { conn });
    }
    const connect = await s.connect;
    symbols.push(...connect.symbols);
    if (connect.demand?.kind === 'tempfail') return refuse(connect.demand);
    if (state === 'CONNECT') return connect.demand ? refuse(connect.demand) : this.accept(symbols, state, undefined);

    // helo: again for a new name (the session's "a new HELO replaces what the last one found").
    const heloName = attrs.get('helo_name') || undefined;
    let helo: StageOutcome | undefined;
    if (heloName) {
      if (!s.helo || s.heloName !== heloName) {
        s.heloName = heloName;
        s.helo = this.run('helo', { conn, facts: connect.facts });
      }
      helo = await s.helo;
      symbols.push(...helo.symbols);
      if (helo.demand?.kind === 'tempfail') return refuse(helo.demand);
    }
    if (state === 'EHLO' || state === 'HELO') {
      const d = connect.demand ?? helo?.demand;
      return d ? refuse(d) : this.accept(symbols, state, undefined);
    }

    // mail: once per transaction.
    const sender = bare(attrs.get('sender') ?? '');
    const instance = attrs.get('instance') ?? '';
    const txKey = `${instance}|${sender}`;
    const authenticated = !!conn.authUser;
    if (!conn.trustedNetwork && !authenticated && s.countedTx !== txKey) {
      s.countedTx = txKey;
      const r = await this.service.limits.message(client);
      if (r) return limited(r, 'message rate limit');
    }
    if (!s.mail || s.txKey !== txKey) {
      s.txKey = txKey;
      s.mail = this.run('mail', { conn, sender, facts: { ...connect.facts, ...helo?.facts } });
    }
    const mail = await s.mail;
    symbols.push(...mail.symbols);
    if (mail.demand?.kind === 'tempfail') return refuse(mail.demand);
    const earlier = authenticated ? undefined : connect.demand ?? helo?.demand ?? mail.demand;
    if (state === 'MAIL') return earlier ? refuse(earlier) : this.accept(symbols, state, undefined);

    // rcpt: every request.
    if (earlier) return refuse(earlier);
    const recipient = bare(attrs.get('recipient') ?? '').toLowerCase();
    if (!conn.trustedNetwork && !authenticated) {
      const r = await this.service.limits.recipient(client);
      if (r) return limited(r, 'recipient rate limit');
    }
    const rcpt = await this.run('rcpt', { conn, sender, recipient, facts: mail.facts });
    symbols.push(...rcpt.symbols);
    if (rcpt.demand) return refuse(rcpt.demand);
    return this.accept(symbols, state, txKey);
  }

  /** DUNNO, or the scored symbols as one header field, once per transaction. */
  private accept(symbols: readonly ScoredSymbol[], state: JudgedState, txKey: string | undefined): PolicyAnswer {
    const scored = symbols.filter((x) => x.score !== 0);
    const s = this.session!;
    if (state !== 'RCPT' || !txKey || !this.listener.prepend_header || !scored.length || s.prependedTx === txKey) {
      return { action: 'DUNNO', outcome: 'dunno', symbols };
    }
    s.prependedTx = txKey;
    return { action: `PREPEND ${policyHeader(scored)}`, outcome: 'prepend', symbols };
  }

  /** The one session this connection remembers: a new client address or port starts another. */
  private sessionFor(client: string, attrs: ReadonlyMap<string, string>): Session {
    const key = `${client}|${attrs.get('client_port') ?? ''}|${attrs.get('client_name') ?? ''}`;
    if (this.session?.key !== key) this.session = { key };
    return this.session;
  }

  private async run<S extends Stage>(stage: S, input: StageInput[S]): Promise<StageOutcome> {
    const runner = this.service.runner;
    if (!runner.has(stage)) return { symbols: [], wouldRefuse: [], facts: { ...(input.facts as Facts | undefined) }, authResults: [], trace: [] };
    const outcome = await runner.run(stage, input);
    for (const w of outcome.wouldRefuse) {
      this.service.logger.info({ event: 'would_reject', listener: this.listener.name, stage, symbol: w.symbol, kind: w.kind, would_reply: replyLine(w.reply) }, `observe: would ${w.kind === 'reject' ? 'reject' : 'tempfail'}`);
    }
    return outcome;
  }
}

/** The header field an accepted transaction gets (X-Spam-Status's tests= list, in short). */
export function policyHeader(symbols: readonly ScoredSymbol[]): string {
  const total = Math.round(symbols.reduce((n, x) => n + x.score, 0) * 100) / 100;
  return `X-Portcullis-Policy: score=${total} tests=${symbols.map((x) => `${x.name}=${Math.round(x.score * 100) / 100}`).join(',')}`;
}

/** The facts the SMTP session would have of this client (src/smtp/session.ts facts()). */
export function connectionFacts(listener: string, client: string, a: ReadonlyMap<string, string>, trusted: boolean): ConnectionFacts {
  const proto = a.get('encryption_protocol');
  const server = clientIp(a.get('server_address'));
  return {
    sessionId: `${listener}-${a.get('instance') || 'connect'}`,
    listener,
    listenerKind: 'mx',
    remoteAddress: client,
    remotePort: portOf(a.get('client_port')),
    localAddress: server ?? '',
    localPort: portOf(a.get('server_port')),
    trustedNetwork: trusted,
    ...(proto ? { tls: { protocol: proto, cipher: a.get('encryption_cipher') || 'unknown' } } : {}),
    ...(a.get('helo_name') ? { helo: a.get('helo_name') } : {}),
    esmtp: a.get('protocol_name') === 'ESMTP',
    ...(a.get('sasl_username') ? { authUser: a.get('sasl_username')!.toLowerCase() } : {}),
  };
}

/** Postfix writes IPv6 clients without brackets; an IPv4-mapped one is its IPv4 address. */
function clientIp(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const a = v.startsWith('::ffff:') && v.includes('.') ? v.slice(7) : v;
  return net.isIP(a) ? a : undefined;
}

const portOf = (v: string | undefined) => (v && /^\d{1,5}$/.test(v) ? Number(v) : 0);
/** Postfix sends addresses bare; a hand-made request may bracket them. */
const bare = (a: string) => a.trim().replace(/^<(.*)>$/, '$1');
