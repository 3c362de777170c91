// One milter connection: the MTA's SMTP session, stage by stage, mapped onto the SMTP path's
// check runner — connect (DNS lists, rDNS), HELO, MAIL (SPF), RCPT, then the header section and
// body assembled into the message and judged by the data stage — and the verdict answered in
// milter terms (docs/integrations.md has the table):
//
//   refusal            → SMFIR_REPLYCODE with the SMTP path's reply ("554 5.7.1 …")
//   tempfail           → SMFIR_REPLYCODE 451 4.x.x
//   quarantine (all)   → SMFIR_QUARANTINE (Postfix: the hold queue)
//   accept             → our Authentication-Results and X-Spam-* fields (SMFIR_INSHEADER), forged
//                        copies removed and the Subject tagged (SMFIR_CHGHEADER), stripped or
//                        defanged attachments (SMFIR_REPLBODY)
//
// Refusals found at connect, HELO and MAIL are given at each RCPT, as on our own port
// (smtpd_delay_reject): the envelope is logged and role addresses stay reachable.
//
// The MTA waits for each answer, so packets are handled one at a time; while one is being
// handled the socket is paused once a packet's worth is buffered. The message is held in memory
// up to smtp.max_message_size (552 past it, nothing more kept).
import type net from 'node:net';
import type { ConnectionFacts, Demand, Facts, ScoredSymbol, Stage, StageInput } from '../../checks/types.js';
import type { Logger } from '../../log.js';
import type { StageOutcome } from '../../pipeline/runner.js';
import { strongerFloor, type Floor } from '../../pipeline/actions.js';
import { decide, type RecipientPolicy } from '../../pipeline/policy.js';
import { listMatches, recipientPolicy } from '../../pipeline/user-settings.js';
import { contentRefusal, messageRefusal, senderFacts } from '../../pipeline/message-verdict.js';
import { bufferModel } from '../../mime/model.js';
import { parseHeaderBlock, type HeaderField } from '../../protocol/headers.js';
import { R, reply as smtpReply, replyLine, type Reply } from '../../protocol/reply.js';
import type { MilterListenerConfig } from '../../smtp/config.js';
import { clientAddress } from '../../net/cidr.js';
import { printable } from '../service.js';
import type { MilterService } from './service.js';
import { bodyReplacement, headerChanges, replyText } from './answer.js';
import {
  C, F, MILTER_VERSION, MilterProtocolError, P, PacketReader, envelopeAddress, optNegReply, parseConnect,
  parseHeader, parseMacros, parseOptNeg, printableCmd, reply, type Packet,
} from './codec.js';

/** The actions we ask for; what the MTA does not offer is logged and done without. */
const WANT_ACTIONS = F.ADDHDRS | F.CHGHDRS | F.CHGBODY | F.QUARANTINE;
/** Steps we skip or need not answer, when the MTA offers to (fewer round trips). */
const WANT_PROTOCOL = P.NOUNKNOWN | P.NODATA | P.NR_HDR | P.NR_EOH | P.HDR_LEADSPC;
/** libmilter's bound on one macro packet's pairs; more is a broken or hostile MTA. */
const MAX_MACROS = 128;
/** The header section, as the SMTP path bounds it. */
const MAX_HEADER = 1024 * 1024;


let counter = 0;

interface Transaction {
  readonly sender: string;
  readonly recipients: string[];
  rejectedRecipients: number;
  readonly symbols: ScoredSymbol[];
  readonly authResults: string[];
  readonly trace: string[];
  readonly deferred?: Demand;
  readonly facts: Facts;
  floor?: Floor;
  readonly wouldRefuse: string[];
  /** The header fields as the MTA sent them (name, value as sent). */
  readonly headers: { name: string; value: string }[];
  readonly parts: Buffer[];
  size: number;
  /** Past smtp.max_message_size: refused, nothing more kept. */
  tooBig: boolean;
}

export class MilterSession {
  private readonly reader = new PacketReader();
  private queue: Packet[] = [];
  private busy = false;
  private closed = false;
  private negotiated = false;
  private actions = 0;
  private protocol = 0;
  private macros = new Map<string, string>();
  private conn: ConnectionFacts | undefined;
  private connSymbols: ScoredSymbol[] = [];
  private heloSymbols: ScoredSymbol[] = [];
  private connFacts: Facts = {};
  private heloFacts: Facts = {};
  private connAuthResults: string[] = [];
  private connFloor: Floor | undefined;
  private connDeferred: Demand | undefined;
  private heloDeferred: Demand | undefined;
  private connWouldRefuse: string[] = [];
  private heloWouldRefuse: string[] = [];
  private helo: string | undefined;
  private tx: Transaction | undefined;
  private readonly id = `m${process.pid.toString(36)}${(++counter).toString(36)}`;
  private log: Logger;
  /** The connection's logger; each SMTP session on it (QUIT_NC reuses it) adds its client. */
  private readonly baseLog: Logger;
  private queuedBytes = 0;
  private readonly started = Date.now();
  private messages = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly listener: MilterListenerConfig,
    private readonly service: MilterService,
    logger: Logger,
  ) {
    this.baseLog = logger.child({ session: this.id, mta: socket.remoteAddress ?? 'unix' });
    this.log = this.baseLog;
  }

  start(): void {
    const s = this.socket;
    // Every answer is a few bytes the MTA waits for: Nagle's algorithm would hold each one back
    // until the MTA's delayed ACK (tens of ms per stage).
    s.setNoDelay(true);
    s.setTimeout(this.listener.timeout, () => {
      this.log.info({ event: 'milter_timeout', pending: this.reader.pending }, 'MTA silent for the listener timeout: closed');
      this.close();
    });
    s.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      let packets: Packet[];
      try {
        packets = this.reader.push(chunk);
      } catch (err) {
        return this.protocolError((err as Error).message);
      }
      this.queue.push(...packets);
      for (const p of packets) this.queuedBytes += p.data.length;
      // An MTA that sends ahead of our answers is read no further than this.
      if (this.busy && this.queuedBytes > 2 * 1024 * 1024) s.pause();
      this.pump();
    });
    // An MTA that vanishes (mid-message too): nothing to answer, nothing kept.
    s.on('error', () => s.destroy());
    s.on('close', () => this.finish());
  }

  /** Ends the connection from outside (shutdown). */
  abort(): void {
    this.closed = true;
    this.socket.destroy();
  }

  get idle(): boolean {
    return !this.busy && !this.tx;
  }

  private finish(): void {
    if (this.tx) this.log.info({ event: 'milter_vanished', sender: this.tx.sender, size: this.tx.size }, 'MTA went away mid-message: nothing kept');
    this.closed = true;
    this.tx = undefined;
    this.queue = [];
    this.log.info({ event: 'milter_disconnect', messages: this.messages, ms: Date.now() - this.started }, 'MTA connection closed');
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private protocolError(why: string): void {
    this.log.warn({ event: 'milter_protocol_error', err: printable(why) }, 'milter protocol error: connection closed');
    this.close();
  }

  private send(...packets: Buffer[]): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(packets.length === 1 ? packets[0]! : Buffer.concat(packets));
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const p = this.queue.shift();
    if (!p) {
      this.socket.resume();
      return;
    }
    this.queuedBytes -= p.data.length;
    this.busy = true;
    let result: void | Promise<void>;
    try {
      result = this.handle(p);
    } catch (err) {
      result = Promise.reject(err);
    }
    Promise.resolve(result)
      .catch((err: unknown) => {
        if (err instanceof MilterProtocolError) return this.protocolError(err.message);
        this.log.error({ event: 'milter_internal_error', cmd: printableCmd(p.cmd), err: (err as Error)?.stack }, 'internal error');
        // Our own failure is no verdict: the MTA retries later (or accepts, listener on_error).
        if (this.listener.on_error === 'accept') this.send(reply.accept());
        else this.send(reply.replyCode(replyText(R.localError)));
        if (p.cmd === C.BODYEOB) this.tx = undefined;
      })
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  private handle(p: Packet): void | Promise<void> {
    if (!this.negotiated && p.cmd !== C.OPTNEG) throw new MilterProtocolError(`'${printableCmd(p.cmd)}' before option negotiation`);
    switch (p.cmd) {
      case C.OPTNEG: return this.optneg(p.data);
      case C.MACRO: return this.macro(p.data);
      case C.CONNECT: return this.connect(p.data);
      case C.HELO: return this.heloCmd(p.data);
      case C.MAIL: return this.mail(p.data);
      case C.RCPT: return this.rcpt(p.data);
      case C.DATA: return this.send(reply.continue());
      case C.HEADER: return this.header(p.data);
      case C.EOH: return this.protocol & P.NR_EOH ? undefined : this.send(reply.continue());
      case C.BODY: return this.body(p.data);
      case C.BODYEOB: return this.endOfMessage(p.data);
      case C.ABORT:
        this.tx = undefined;
        return;
      case C.UNKNOWN: return this.send(reply.continue()); // the MTA answers unknown commands itself
      case C.QUIT: return this.close();
      case C.QUIT_NC:
        // The MTA reuses this connection for its next SMTP session: forget this one.
        this.resetConnection();
        return;
      default:
        throw new MilterProtocolError(`unknown command '${printableCmd(p.cmd)}'`);
    }
  }

  private optneg(data: Buffer): void {
    if (this.negotiated) throw new MilterProtocolError('second option negotiation');
    const o = parseOptNeg(data);
    if (o.version < 2) throw new MilterProtocolError(`milter protocol version ${o.version} (2 to ${MILTER_VERSION} spoken)`);
    this.negotiated = true;
    this.actions = o.actions & WANT_ACTIONS;
    this.protocol = o.protocol & WANT_PROTOCOL;
    const missing = WANT_ACTIONS & ~o.actions;
    if (missing) {
      this.log.warn({ event: 'milter_degraded', missing: actionNames(missing) }, 'the MTA does not offer every action we use: working without them (docs/integrations.md)');
    }
    this.send(optNegReply({ version: Math.min(o.version, MILTER_VERSION), actions: this.actions, protocol: this.protocol }));
  }

  private macro(data: Buffer): void {
    const { macros } = parseMacros(data);
    if (macros.length > MAX_MACROS) throw new MilterProtocolError(`MACRO with ${macros.length} pairs (at most ${MAX_MACROS})`);
    for (const [k, v] of macros) this.macros.set(k, v);
    if (this.macros.size > MAX_MACROS * 4) throw new MilterProtocolError(`more than ${MAX_MACROS * 4} distinct macros`);
  }

  private resetConnection(): void {
    this.macros = new Map();
    this.conn = undefined;
    this.connSymbols = [];
    this.heloSymbols = [];
    this.connFacts = {};
    this.heloFacts = {};
    this.connAuthResults = [];
    this.connFloor = undefined;
    this.connDeferred = undefined;
    this.heloDeferred = undefined;
    this.connWouldRefuse = [];
    this.heloWouldRefuse = [];
    this.helo = undefined;
    this.tx = undefined;
  }

  /** The client as the MTA saw it, with what the macros say of TLS and AUTH now. */
  private facts(): ConnectionFacts {
    const base = this.conn ?? this.connectionFacts({ family: 'U', port: 0, address: '' });
    const tlsVersion = this.macros.get('tls_version');
    const authUser = this.macros.get('auth_authen');
    return {
      ...base,
      helo: this.helo,
      esmtp: true,
      ...(tlsVersion ? { tls: { protocol: tlsVersion, cipher: this.macros.get('cipher') ?? 'unknown' } } : {}),
      ...(authUser ? { authUser: authUser.toLowerCase().slice(0, 320) } : {}),
    };
  }

  private connectionFacts(c: { family: string; port: number; address: string }): ConnectionFacts {
    const ip = c.family === '4' || c.family === '6' ? c.address.replace(/^IPv6:/i, '') : (this.macros.get('client_addr') ?? '');
    // A local submission (Postfix's sendmail command through non_smtpd_milters) has no client address.
    const remoteAddress = clientAddress(ip || '127.0.0.1');
    const daemon = this.macros.get('daemon_name') ?? '';
    return {
      sessionId: this.id,
      listener: this.listener.name,
      // Postfix's submission services set milter_macro_daemon_name=ORIGINATING (its own recipe; the
      // default is $myhostname): judged as our submission listener (no DNS lists, no rDNS).
      listenerKind: /^originating$|submission|smtps/i.test(daemon) ? 'submission' : 'mx',
      remoteAddress,
      remotePort: c.port,
      localAddress: clientAddress(this.macros.get('daemon_addr') ?? this.socket.localAddress ?? '127.0.0.1'),
      localPort: 0,
      trustedNetwork: !ip || this.service.isTrusted(remoteAddress),
      esmtp: true,
    };
  }

  private async connect(data: Buffer): Promise<void> {
    const c = parseConnect(data);
    this.resetConnectionKeepMacros();
    this.conn = this.connectionFacts(c);
    this.log = this.baseLog.child({ client: this.conn.remoteAddress, ...(this.macros.get('client_name') || c.hostname ? { client_name: printable(this.macros.get('client_name') ?? c.hostname, 100) } : {}) });
    const outcome = await this.runStage('connect', { conn: this.facts() });
    this.connSymbols = outcome.symbols;
    this.connAuthResults = outcome.authResults;
    this.connFacts = outcome.facts;
    this.connFloor = outcome.floor;
    this.connWouldRefuse = this.observed('connect', outcome);
    if (outcome.demand?.kind === 'tempfail') return this.refuseNow(outcome.demand.reply, 'connect');
    this.connDeferred = outcome.demand;
    this.send(reply.continue());
  }

  private resetConnectionKeepMacros(): void {
    const macros = this.macros;
    this.resetConnection();
    this.macros = macros;
  }

  private async heloCmd(data: Buffer): Promise<void> {
    const [helo] = data.length ? splitSafe(data) : [''];
    this.helo = printable(helo ?? '', 255) || undefined;
    this.tx = undefined;
    const outcome = await this.runStage('helo', { conn: this.facts(), facts: this.connFacts });
    this.heloSymbols = outcome.symbols;
    this.heloFacts = outcome.facts;
    this.heloWouldRefuse = this.observed('helo', outcome);
    if (outcome.demand?.kind === 'tempfail') return this.refuseNow(outcome.demand.reply, 'helo');
    this.heloDeferred = outcome.demand;
    this.send(reply.continue());
  }

  private async mail(data: Buffer): Promise<void> {
    const sender = envelopeAddress(data, 'MAIL');
    if (sender.length > 998) throw new MilterProtocolError('MAIL: address too long');
    const outcome = await this.runStage('mail', { conn: this.facts(), sender, facts: { ...this.connFacts, ...this.heloFacts } });
    this.tx = {
      sender, recipients: [], rejectedRecipients: 0, symbols: [...outcome.symbols], authResults: outcome.authResults, trace: outcome.trace,
      deferred: outcome.demand, facts: outcome.facts, floor: outcome.floor, wouldRefuse: this.observed('mail', outcome),
      headers: [], parts: [], size: 0, tooBig: false,
    };
    if (outcome.demand?.kind === 'tempfail') return this.refuseNow(outcome.demand.reply, 'mail');
    this.send(reply.continue());
  }

  private async rcpt(data: Buffer): Promise<void> {
    const tx = this.tx;
    if (!tx) throw new MilterProtocolError('RCPT before MAIL');
    const recipient = envelopeAddress(data, 'RCPT');
    const address = recipient.toLowerCase();
    const conn = this.facts();
    const role = this.service.isRole?.(address) ?? false;
    if (!role && !conn.authUser) {
      // Refusals found earlier in the session land here, as on our own port.
      const deferred = this.connDeferred ?? this.heloDeferred ?? tx.deferred;
      if (deferred) return this.refuseRcpt(tx, deferred.reply, recipient, `refused earlier in the session: ${deferred.reply.text}`);
      const settings = tx.sender ? this.service.users?.settingsFor(address) : undefined;
      if (settings && listMatches(settings.block, tx.sender)) {
        return this.refuseRcpt(tx, smtpReply(550, '5.7.1', `<${recipient}>: Recipient address rejected: the recipient does not accept mail from <${tx.sender}>`), recipient, 'sender on the recipient\'s block list');
      }
    }
    const outcome = await this.runStage('rcpt', { conn, sender: tx.sender, recipient: address, facts: tx.facts });
    tx.wouldRefuse.push(...this.observed('rcpt', outcome));
    if (outcome.demand && !role) return this.refuseRcpt(tx, outcome.demand.reply, recipient, outcome.demand.reply.text);
    tx.floor = strongerFloor(tx.floor, outcome.floor);
    tx.symbols.push(...outcome.symbols);
    if (!tx.recipients.includes(address)) tx.recipients.push(address);
    this.send(reply.continue());
  }

  private refuseRcpt(tx: Transaction, r: Reply, recipient: string, why: string): void {
    tx.rejectedRecipients++;
    this.log.info({
      event: 'rcpt_reject', queue_id: this.macros.get('i'), helo: this.helo, sender: tx.sender, recipient, why: printable(why), reply: `${r.code} ${r.enhanced ?? ''}`.trim(),
      symbols: [...this.connSymbols, ...tx.symbols].map((x) => ({ name: x.name, score: x.score, reason: x.reason })),
    }, 'recipient refused');
    this.send(reply.replyCode(replyText(r)));
  }

  private refuseNow(r: Reply, stage: Stage): void {
    this.log.info({ event: 'milter_refused', stage, reply: replyLine(r) }, `refused at ${stage}`);
    this.send(reply.replyCode(replyText(r)));
  }

  private header(data: Buffer): void {
    const tx = this.tx;
    if (!tx) throw new MilterProtocolError('HEADER before MAIL');
    const h = parseHeader(data);
    if (!tx.tooBig) {
      tx.headers.push(h);
      tx.size += h.name.length + h.value.length + 4;
      if (tx.size > MAX_HEADER || tx.size > this.service.maxMessageSize) this.tooBig(tx);
    }
    if (!(this.protocol & P.NR_HDR)) this.send(reply.continue());
  }

  private body(data: Buffer): void {
    const tx = this.tx;
    if (!tx) throw new MilterProtocolError('BODY before MAIL');
    this.addBody(tx, data);
    // A refused message: the MTA needs no more of it (Postfix stops sending the body).
    this.send(tx.tooBig ? reply.replyCode(replyText(R.messageTooBig)) : reply.continue());
  }

  private tooBig(tx: Transaction): void {
    tx.tooBig = true;
    tx.parts.length = 0;
    tx.headers.length = 0;
  }

  /** The message as the SMTP path holds it: header fields, a blank line, the body; CRLF. */
  private assemble(tx: Transaction): { raw: Buffer; headerBlock: Buffer } {
    const lead = this.protocol & P.HDR_LEADSPC ? '' : ' ';
    const lines = tx.headers.map((h) => `${h.name}:${lead}${h.value.replace(/\r?\n/g, '\r\n')}\r\n`).join('');
    const headerBlock = Buffer.from(`${lines}\r\n`, 'latin1');
    return { raw: Buffer.concat([headerBlock, ...tx.parts]), headerBlock };
  }

  private async endOfMessage(last: Buffer): Promise<void> {
    const tx = this.tx;
    if (!tx) throw new MilterProtocolError('end of message before MAIL');
    if (last.length) this.addBody(tx, last);
    this.tx = undefined;
    this.messages++;
    const queueId = this.macros.get('i');
    const base = { queue_id: queueId, mta: this.macros.get('j'), helo: this.helo, user: this.facts().authUser, tls: this.facts().tls?.protocol, sender: tx.sender, recipients: tx.recipients, rejected_recipients: tx.rejectedRecipients };
    const refuse = (r: Reply, action: string, symbols: ScoredSymbol[] = [], score?: number, extra: Record<string, unknown> = {}) => {
      this.logMessage({ ...base, action, reply: `${r.code} ${r.enhanced ?? ''}`.trim(), size: tx.size, symbols, score, ...extra });
      this.service.count?.(this.listener.name, 'milter', action);
      this.send(reply.replyCode(replyText(r)));
    };
    if (tx.tooBig) return refuse(R.messageTooBig, 'too_big');
    const { raw, headerBlock } = this.assemble(tx);
    const headers = parseHeaderBlock(headerBlock);
    if (headers.filter((h) => h.key === 'received').length > 50) return refuse(smtpReply(554, '5.4.6', 'Error: too many hops (mail loop?)'), 'loop');
    const conn = this.facts();
    // The one message model, as `portcullis scan` and the scan listeners build it for a message in memory.
    const model = bufferModel(raw, this.service.messageModel);
    const facts: Facts = { ...this.connFacts, ...this.heloFacts, ...tx.facts };
    const outcome = await this.runStage('data', {
      conn, envelope: { sender: tx.sender, recipients: tx.recipients }, message: { ...model, headers, bareNewlines: 0 }, facts,
    });
    const symbols = [...this.connSymbols, ...this.heloSymbols, ...tx.symbols, ...outcome.symbols];
    tx.wouldRefuse.push(...this.observed('data', outcome));
    if (outcome.demand) return refuse(outcome.demand.reply, outcome.demand.kind, symbols);
    const t = this.service.thresholds;
    const floor = strongerFloor(strongerFloor(this.connFloor, tx.floor), outcome.floor);
    const policies = this.policies(tx, headers, outcome.facts);
    const verdict = decide(symbols, policies, t, this.service.observe, floor);
    const refusal = messageRefusal(verdict, policies, symbols);
    if (refusal) return refuse(refusal, 'reject', symbols, verdict.score);
    if (verdict.wouldReject && this.service.observe) {
      tx.wouldRefuse.push(...this.observed('data', { wouldRefuse: [{ kind: 'reject', reply: contentRefusal(verdict.score, symbols), symbol: 'SCORE' }] }));
    }
    const out: Buffer[] = [];
    // The message goes on: changes first, then the final answer (the protocol's order).
    const negotiated = { actions: this.actions, protocol: this.protocol };
    const attachments = await bodyReplacement(negotiated, outcome.rewrite, raw, headerBlock);
    if (attachments?.degraded) this.log.warn({ event: 'milter_degraded', queue_id: queueId, missing: ['CHGBODY'], attachments: attachments.changes }, 'attachments not rewritten (the MTA offers no body replacement, or the top-level part itself would change): tagged instead');
    out.push(...(attachments?.packets ?? []));
    out.push(...headerChanges(negotiated, {
      hostname: this.service.hostname, thresholds: t, subjectTag: this.service.subjectTag, received: tx.headers, headers, symbols, score: verdict.score,
      authUser: conn.authUser, authResults: [...this.connAuthResults, ...tx.authResults, ...outcome.authResults], trace: [...tx.trace, ...outcome.trace],
      attachmentSummary: attachments?.summary,
    }));
    // The MTA keeps one copy for all recipients: held only when every recipient's copy would be.
    const actions = verdict.actions;
    const hold = actions.length > 0 && actions.every((a) => a === 'quarantine');
    if (hold) {
      if (this.actions & F.QUARANTINE) out.push(reply.quarantine(`Portcullis: score ${verdict.score} (${topSymbols(symbols)})`));
      else this.log.warn({ event: 'milter_degraded', queue_id: queueId, missing: ['QUARANTINE'] }, 'cannot hold the message (the MTA offers no quarantine): tagged instead');
    }
    const distinct = [...new Set(actions)];
    const action = hold ? 'quarantine' : distinct.length === 1 ? distinct[0]! : 'mixed';
    out.push(reply.accept());
    this.logMessage({
      ...base, action, reply: '250', size: raw.length, score: verdict.score, symbols,
      ...(attachments ? { attachments: attachments.changes } : {}),
      ...(attachments?.degraded ? { rewrite: 'not applied' } : {}),
      wouldReject: [...this.connWouldRefuse, ...this.heloWouldRefuse, ...tx.wouldRefuse],
    });
    this.service.count?.(this.listener.name, 'milter', action);
    this.send(...out);
  }

  private addBody(tx: Transaction, data: Buffer): void {
    if (tx.tooBig) return;
    tx.parts.push(data);
    tx.size += data.length;
    if (tx.size > this.service.maxMessageSize) this.tooBig(tx);
  }

  /** Each recipient's policy, as the SMTP path builds it. */
  private policies(tx: Transaction, headers: readonly HeaderField[], facts: Facts): RecipientPolicy[] {
    const sender = senderFacts(tx.sender, headers, facts);
    return tx.recipients.map((r) => {
      const exempt = this.service.isRole?.(r) ?? false;
      const settings = exempt ? undefined : this.service.users?.settingsFor(r);
      return recipientPolicy(settings, this.service.thresholds, sender, exempt);
    });
  }

  private logMessage(m: { action: string; reply: string; size: number; symbols: ScoredSymbol[]; score?: number; wouldReject?: string[]; [k: string]: unknown }): void {
    const { wouldReject, symbols, score, ...rest } = m;
    this.log.info({
      event: 'message', ...rest,
      score: score ?? Math.round(symbols.reduce((n, s) => n + s.score, 0) * 100) / 100,
      symbols: symbols.map((s) => ({ name: s.name, score: s.score, reason: s.reason })),
      ...(wouldReject?.length ? { observe: 'would reject', would_reply: wouldReject } : {}),
    }, 'message');
  }

  /** Observe mode: each refusal held back, logged; their replies. */
  private observed(stage: Stage, outcome: Pick<StageOutcome, 'wouldRefuse'>): string[] {
    return outcome.wouldRefuse.map((w) => {
      const text = replyLine(w.reply);
      this.log.info({ event: 'would_reject', stage, symbol: w.symbol, kind: w.kind, would_reply: text }, `observe: would ${w.kind === 'reject' ? 'reject' : 'tempfail'}`);
      return text;
    });
  }

  private async runStage<S extends Stage>(stage: S, input: StageInput[S]): Promise<StageOutcome> {
    const runner = this.service.runner;
    if (!runner.has(stage)) return { symbols: [], wouldRefuse: [], facts: { ...input.facts }, authResults: [], trace: [] };
    return runner.run(stage, input);
  }
}

function topSymbols(symbols: readonly ScoredSymbol[]): string {
  return [...symbols].sort((a, b) => b.score - a.score).slice(0, 3).map((s) => s.name).join(', ');
}

function splitSafe(data: Buffer): string[] {
  return data.toString('latin1').replace(/\0$/, '').split('\0');
}

function actionNames(mask: number): string[] {
  return Object.entries(F).filter(([, bit]) => mask & bit).map(([name]) => name);
}


