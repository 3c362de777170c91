// Outbound limits and compromised-account detection for authenticated senders ("don't be the
// zombie"): message and recipient rates per user and per client address (hour and day), a cap on
// first-time recipients, and the behavioural baseline (baseline.ts). When one trips, the sender
// (a user, or a client address for the per-IP limits) is LOCKED: the message that tripped it is
// held (or refused, lock_action tempfail), its mail still in the queue is held, its next
// submissions get 451 with the reason, postmaster@ gets one alert per lock, and the log
// (`account_locked`) and metrics say why. Every count and lock is in the state store, so a
// restart keeps them and several nodes on one Redis share them. docs/outbound.md "Limits and holds".
import crypto from 'node:crypto';
import client from 'prom-client';
import type { StateStore } from '../../store/store.js';
import type { Queue, QueuedMessage } from '../../queue/queue.js';
import { selects, type HoldInfo, type HoldSelector } from '../../queue/hold.js';
import type { Logger } from '../../log.js';
import { reply, type Reply } from '../../protocol/reply.js';
import type { OutboundContentConfig, OutboundLimitsConfig, RateLimits } from './config.js';
import { outboundVerdict, type OutboundVerdict } from './content.js';
import type { Verdict } from '../policy.js';
import { Baseline, judgeComplaints, judgeDay, judgeFailures, judgeNetworks, judgeSpam, type Trip } from './baseline.js';
import { DAY, HOUR, SlidingWindows } from './windows.js';

/** A locked sender: an authenticated user, or a client address (per-IP limits). */
export type Subject = { user: string } | { ip: string };

export interface Lock {
  readonly subject: string;
  readonly code: string;
  readonly reason: string;
  readonly since: string;
}

export interface OutboundGuardDeps {
  readonly store: StateStore;
  readonly config: OutboundLimitsConfig;
  readonly content: OutboundContentConfig;
  readonly queue: Queue;
  readonly logger: Logger;
  readonly registry: client.Registry;
  /** Who gets the alert (outbound.limits.alert, else postmaster@ the first local domain). */
  readonly alertTo: string;
  /** Puts the alert message into the queue (the gateway resolves the address: local delivery for postmaster@). */
  readonly alert: (to: string, message: Buffer) => Promise<void>;
  readonly hostname: string;
  readonly now?: () => number;
}

/** What end of data does with an authenticated message. */
export type Submission = { kind: 'accept' } | { kind: 'hold'; held: HoldInfo; code: string } | { kind: 'refuse'; reply: Reply };

const subjectKey = (s: Subject) => ('user' in s ? `user:${s.user}` : `ip:${s.ip}`);
const selector = (s: Subject): HoldSelector => ('user' in s ? { user: s.user } : { client: s.ip });

export class OutboundGuard {
  private readonly windows: SlidingWindows;
  private readonly baseline: Baseline;
  private readonly now: () => number;
  private readonly held: client.Counter<'reason'>;
  private readonly log: Logger;

  constructor(private readonly deps: OutboundGuardDeps) {
    this.now = deps.now ?? Date.now;
    this.windows = new SlidingWindows(deps.store, this.now);
    this.baseline = new Baseline(deps.store, deps.config.baseline, deps.config.known_recipient_ttl, this.now);
    this.log = deps.logger;
    this.held = new client.Counter({
      name: 'portcullis_outbound_held_total', help: 'Outbound messages put on hold, by reason (a limit, spam, account_locked, admin)',
      labelNames: ['reason'], registers: [deps.registry],
    });
    const store = deps.store;
    new client.Gauge({
      name: 'portcullis_accounts_locked', help: 'Senders (users and client addresses) whose outbound mail is suspended now', registers: [deps.registry],
      async collect() {
        this.set((await store.scan('ob:lock:', 10_000).catch(() => [])).length);
      },
    });
  }

  /** The outbound content policy's reading of a verdict (content.ts); undefined when it is off. */
  content(v: Verdict, junkThreshold: number, observe: boolean): OutboundVerdict | undefined {
    return this.deps.content.enabled ? outboundVerdict(v, this.deps.content, junkThreshold, observe) : undefined;
  }

  /** Counts a hold made elsewhere (the content policy, `queue hold`). */
  countHeld(reason: string, n = 1): void {
    if (n > 0) this.held.inc({ reason }, n);
  }

  // ---- AUTH ----------------------------------------------------------------------------------

  /** A successful login: remembers its network; too many new ones in a day lock the user. Never throws. */
  async authenticated(user: string, ip: string): Promise<void> {
    if (!this.deps.config.enabled) return;
    try {
      const n = await this.baseline.network(user, ip);
      if (!n.isNew) return;
      this.log.info({ event: 'outbound_new_network', user, ip, network: n.net, today: n.today }, `login from a network not seen for ${user}`);
      const trip = judgeNetworks(n.today, this.deps.config.baseline);
      if (trip) await this.lock({ user }, trip);
    } catch (err) {
      this.log.error({ event: 'outbound_store_error', user, err: (err as Error).message }, 'cannot record the login network');
    }
  }

  // ---- complaints ----------------------------------------------------------------------------

  /**
   * A complaint report about the user's mail (src/reports/intake.ts), authenticated by the
   * reporter's DMARC pass: counted over 7 days; enough of them lock the user. Never throws.
   */
  async complaint(user: string): Promise<void> {
    if (!this.deps.config.enabled) return;
    try {
      const week = await this.windows.add(`ob:complaints:${user}`, 7 * DAY, 1);
      const trip = judgeComplaints(week, this.deps.config.baseline);
      if (trip && !(await this.lockOf({ user }))) await this.lock({ user }, trip);
    } catch (err) {
      this.log.error({ event: 'outbound_store_error', user, err: (err as Error).message }, 'cannot record a complaint');
    }
  }

  // ---- MAIL ----------------------------------------------------------------------------------

  /** The 451 for a locked user or client address; undefined when it may send. */
  async suspended(user: string, ip: string): Promise<Reply | undefined> {
    if (!this.deps.config.enabled) return undefined;
    for (const s of [{ user }, { ip }] as Subject[]) {
      const lock = await this.lockOf(s);
      if (lock) return suspendedReply(s, lock.reason);
    }
    return undefined;
  }

  // ---- end of data ---------------------------------------------------------------------------

  /**
   * Counts an authenticated message that passed the content checks and decides what becomes of
   * it. `spamHold` is the content policy's hold (content.ts), if any: it holds this message, and
   * too many in a day lock the user.
   */
  async submitted(s: { id: string; user: string; ip: string; recipients: readonly string[]; spamHold?: { reason: string } }): Promise<Submission> {
    const c = this.deps.config;
    if (!c.enabled) return s.spamHold ? this.spam(s.spamHold) : { kind: 'accept' };
    const n = s.recipients.length;
    const user: Subject = { user: s.user };
    const ip: Subject = { ip: s.ip };
    const trips: [Subject, Trip | undefined][] = [
      [user, await this.rates(`user:${s.user}`, c.user, n)],
      [ip, await this.rates(`ip:${s.ip}`, c.ip, n)],
    ];
    const today = await this.baseline.recordMessage(s.user, s.recipients);
    if (c.new_recipients_per_day && today.newRecipients > c.new_recipients_per_day) {
      trips.push([user, { code: 'new_recipients_per_day', text: `${today.newRecipients} new recipients today exceed the limit of ${c.new_recipients_per_day}` }]);
    }
    trips.push([user, judgeDay(today, await this.baseline.usual(s.user), c.baseline)]);
    if (s.spamHold) trips.push([user, judgeSpam(await this.baseline.spamHold(s.user), c.baseline)]);
    const tripped = trips.find((t): t is [Subject, Trip] => t[1] !== undefined);
    if (!tripped) {
      // Locked while this message was under way (another session or node tripped): held too.
      for (const who of [user, ip]) {
        const lock = await this.lockOf(who);
        if (lock) return this.lockedHold(who, s.ip, lock.reason, 'account_locked');
      }
      return s.spamHold ? this.spam(s.spamHold) : { kind: 'accept' };
    }
    const [who, trip] = tripped;
    const lock = await this.lock(who, trip, s.id);
    return this.lockedHold(who, s.ip, lock.reason, trip.code);
  }

  /** The message of a locked sender: held (or refused, lock_action tempfail). */
  private lockedHold(who: Subject, ip: string, reason: string, code: string): Submission {
    if (this.deps.config.lock_action === 'tempfail') return { kind: 'refuse', reply: suspendedReply(who, reason) };
    this.held.inc({ reason: code });
    return { kind: 'hold', code, held: { reason: `${'user' in who ? 'account' : `client ${ip}`} locked: ${reason}`, since: this.now() } };
  }

  private spam(h: { reason: string }): Submission {
    this.held.inc({ reason: 'spam' });
    return { kind: 'hold', code: 'spam', held: { reason: h.reason, since: this.now() } };
  }

  /** Adds a message to the four windows of a sender; the first limit passed, if any. */
  private async rates(who: string, l: RateLimits, recipients: number): Promise<Trip | undefined> {
    const checks: [string, number, number, string, string][] = [
      ['recipients_per_hour', HOUR, l.recipients_per_hour, 'rcpt', 'recipients in the last hour'],
      ['messages_per_hour', HOUR, l.messages_per_hour, 'msg', 'messages in the last hour'],
      ['recipients_per_day', DAY, l.recipients_per_day, 'rcpt', 'recipients in the last 24 hours'],
      ['messages_per_day', DAY, l.messages_per_day, 'msg', 'messages in the last 24 hours'],
    ];
    let trip: Trip | undefined;
    for (const [code, window, limit, what, words] of checks) {
      // Counted even when a limit is off or another one tripped: the counts stay true.
      const count = await this.windows.add(`ob:rate:${what}:${window === HOUR ? 'h' : 'd'}:${who}`, window, what === 'rcpt' ? recipients : 1);
      if (!trip && limit && count > limit) trip = { code: `${who.startsWith('ip:') ? 'ip_' : ''}${code}`, text: `${count} ${words} exceed the limit of ${limit}` };
    }
    return trip;
  }

  // ---- delivery outcomes ---------------------------------------------------------------------

  /** A remote delivery outcome of an authenticated user's message (queue events). Never throws. */
  async outcome(m: QueuedMessage, delivered: boolean): Promise<void> {
    const user = typeof m.meta.user === 'string' ? m.meta.user : undefined;
    if (!this.deps.config.enabled || !m.authenticated || !user) return;
    try {
      const trip = judgeFailures(await this.baseline.outcome(user, delivered), this.deps.config.baseline);
      if (trip && !(await this.lockOf({ user }))) await this.lock({ user }, trip);
    } catch (err) {
      this.log.error({ event: 'outbound_store_error', user, err: (err as Error).message }, 'cannot record a delivery outcome');
    }
  }

  // ---- locks ---------------------------------------------------------------------------------

  async lockOf(s: Subject): Promise<Lock | undefined> {
    const v = await this.deps.store.getValue(`ob:lock:${subjectKey(s)}`);
    if (!v) return undefined;
    try {
      return JSON.parse(v) as Lock;
    } catch {
      return { subject: subjectKey(s), code: 'unknown', reason: 'locked', since: '' };
    }
  }

  /**
   * Locks a sender (once: a second trip while locked changes nothing), holds its queued mail
   * (except `exceptId`, committed held by the caller) and sends the one alert of this lock.
   */
  private async lock(s: Subject, trip: Trip, exceptId?: string): Promise<Lock> {
    const key = subjectKey(s);
    // incr is atomic on every backend: of several nodes tripping at once, one alerts.
    const first = (await this.deps.store.incr(`ob:lockn:${key}`, 0)) === 1;
    if (!first) return (await this.lockOf(s)) ?? { subject: key, code: trip.code, reason: trip.text, since: '' };
    const lock: Lock = { subject: key, code: trip.code, reason: trip.text, since: new Date(this.now()).toISOString() };
    await this.deps.store.set(`ob:lock:${key}`, JSON.stringify(lock), 0);
    const sel = selector(s);
    const ids = await this.deps.queue.holdWhere((m) => m.id !== exceptId && selects(sel, m), `${'user' in s ? 'account' : `client ${s.ip}`} locked: ${trip.text}`);
    this.countHeld('account_locked', ids.length);
    const who = 'user' in s ? s.user : s.ip;
    this.log.warn({ event: 'account_locked', subject: key, ...('user' in s ? { user: s.user } : { ip: s.ip }), code: trip.code, reason: trip.text, held: ids.length + (exceptId ? 1 : 0) },
      `outbound mail of ${who} suspended: ${trip.text}`);
    const subject = `Outbound mail of ${who} suspended: ${trip.code}`;
    const body = alertBody(s, lock, ids.length + (exceptId ? 1 : 0), this.deps.hostname);
    await this.deps.alert(this.deps.alertTo, alertMessage({ hostname: this.deps.hostname, to: this.deps.alertTo, subject, body, date: new Date(this.now()) }))
      .catch((err: Error) => this.log.error({ event: 'lock_alert_failed', subject: key, err: err.message }, 'cannot queue the lock alert'));
    return lock;
  }

  /** `portcullis user unlock`: lifts the lock and forgets the counts that tripped it. False when it was not locked. */
  async unlock(s: Subject): Promise<boolean> {
    const key = subjectKey(s);
    const was = await this.deps.store.delete(`ob:lock:${key}`);
    await this.deps.store.delete(`ob:lockn:${key}`);
    // A fresh start: the windows of the last hour and day would trip again at the next message.
    const who = 'user' in s ? `user:${s.user}` : `ip:${s.ip}`;
    for (const what of ['rcpt', 'msg']) {
      await this.windows.reset(`ob:rate:${what}:h:${who}`, HOUR);
      await this.windows.reset(`ob:rate:${what}:d:${who}`, DAY);
    }
    if ('user' in s) await this.baseline.forgetToday(s.user);
    if (was) this.log.info({ event: 'account_unlocked', subject: key }, `outbound mail of ${'user' in s ? s.user : s.ip} allowed again`);
    return was;
  }

  /** Every lock in force (for `user unlock` without arguments and the console). */
  async locks(): Promise<Lock[]> {
    const entries = await this.deps.store.scan('ob:lock:', 10_000);
    return entries.map((e) => {
      try {
        return JSON.parse(e.value) as Lock;
      } catch {
        return { subject: e.key.slice('ob:lock:'.length), code: 'unknown', reason: 'locked', since: '' };
      }
    });
  }
}

export function suspendedReply(s: Subject, reason: string): Reply {
  const who = 'user' in s ? `<${s.user}> sending is suspended` : `sending from ${s.ip} is suspended`;
  return reply(451, '4.7.1', `${who}: ${reason}; ask your administrator`);
}

function alertBody(s: Subject, lock: Lock, held: number, hostname: string): string {
  const who = 'user' in s ? `the account ${s.user}` : `authenticated senders at ${s.ip}`;
  const unlock = 'user' in s ? s.user : s.ip;
  const release = 'user' in s ? `--user ${s.user}` : `--client ${s.ip}`;
  return [
    `Portcullis on ${hostname} has suspended outbound mail of ${who}.`,
    '',
    `Why:     ${lock.reason} (${lock.code})`,
    `Since:   ${lock.since}`,
    `Held:    ${held} message(s) in the hold queue (not sent, not lost)`,
    '',
    'This is what a compromised account looks like: check the account (change its password if',
    'in doubt) and look at the held mail with `portcullis queue list`. Then:',
    '',
    `  portcullis queue release ${release}   # send the held mail (or queue delete ID)`,
    `  portcullis user unlock ${unlock}       # allow new submissions again`,
    '',
    'Until unlocked, new submissions get a temporary refusal (451) with the reason above.',
    'This alert is sent once per lock.',
  ].join('\n');
}

/** The alert as a message (ASCII only: addresses and reasons are ours or were checked at SMTP). */
export function alertMessage(o: { hostname: string; to: string; subject: string; body: string; date: Date }): Buffer {
  const ascii = (t: string) => t.replace(/[^\x20-\x7e]/g, '?');
  const headers = [
    `From: "Portcullis" <MAILER-DAEMON@${ascii(o.hostname)}>`,
    `To: <${ascii(o.to)}>`,
    `Subject: ${ascii(o.subject)}`,
    `Date: ${o.date.toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <account-lock.${o.date.getTime().toString(36)}.${crypto.randomBytes(6).toString('hex')}@${ascii(o.hostname)}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
  ];
  const body = o.body.split('\n').map((l) => ascii(l)).join('\r\n');
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}\r\n`, 'latin1');
}
