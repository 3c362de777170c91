// The behavioural baseline of each authenticated user: what a normal day of theirs looks like,
// so that a compromised account stands out even below the fixed limits. Per user and UTC day the
// state store counts recipients, distinct recipient domains, first-time recipients, delivery
// outcomes, new networks at login and spam holds (atomic `incr`s, shared by every node on one
// Redis); "usual" is the mean of the days of the learning period before today. The decisions
// (judge*) are pure functions of those counts, tested with an injected clock.
import type { StateStore } from '../../store/store.js';
import { networkOf } from '../../net/cidr.js';
import type { OutboundLimitsConfig } from './config.js';
import { DAY, dayOf } from './windows.js';

export type BaselineConfig = OutboundLimitsConfig['baseline'];

/** A limit or the baseline tripped: which (`code`, also the metric's reason), and why in words. */
export interface Trip {
  readonly code: string;
  readonly text: string;
}

export interface Usual {
  /** The user has history for the whole learning period. */
  readonly learned: boolean;
  readonly recipients: number;
  readonly domains: number;
}

export interface Today {
  readonly recipients: number;
  readonly domains: number;
  readonly newRecipients: number;
}

type Counter = 'rcpt' | 'dom' | 'new' | 'ok' | 'fail' | 'net' | 'spam';

export class Baseline {
  /** Means of past days per user, computed once a day (past days do not change). */
  private readonly usualCache = new Map<string, Usual>();

  constructor(
    private readonly store: StateStore,
    private readonly config: BaselineConfig,
    private readonly knownTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private get keepMs(): number {
    return (this.config.learning_days + 2) * DAY;
  }

  private key(what: Counter, user: string, day = dayOf(this.now())): string {
    return `ob:day:${what}:${user}:${day}`;
  }

  /** Marks the user as seen (the start of its learning period); true when it is new. */
  async touch(user: string): Promise<boolean> {
    const key = `ob:first:${user}`;
    if (await this.store.getValue(key)) return false;
    await this.store.set(key, String(this.now()), 0);
    return true;
  }

  /** Counts one accepted message's recipients into today; returns today's totals. */
  async recordMessage(user: string, recipients: readonly string[]): Promise<Today> {
    await this.touch(user);
    const day = dayOf(this.now());
    const addrs = [...new Set(recipients.map((r) => r.toLowerCase()))];
    let newOnes = 0;
    let newDomains = 0;
    for (const a of addrs) {
      const known = `ob:known:${user}:${a}`;
      if (!(await this.store.getValue(known))) newOnes++;
      await this.store.set(known, '1', this.knownTtlMs);
      const domain = a.slice(a.lastIndexOf('@') + 1);
      // incr returns 1 only for the first message of the day to this domain, on any node.
      if ((await this.store.incr(`ob:day:seen:${user}:${day}:${domain}`, DAY + 3_600_000)) === 1) newDomains++;
    }
    const [rcpt, dom, fresh] = await Promise.all([
      this.store.incr(this.key('rcpt', user, day), this.keepMs, addrs.length),
      this.store.incr(this.key('dom', user, day), this.keepMs, newDomains),
      this.store.incr(this.key('new', user, day), 2 * DAY, newOnes),
    ]);
    return { recipients: rcpt, domains: dom, newRecipients: fresh };
  }

  /** The user's usual day: means over the learning period before today. */
  async usual(user: string): Promise<Usual> {
    const today = dayOf(this.now());
    const cacheKey = `${user}\n${today}`;
    const hit = this.usualCache.get(cacheKey);
    if (hit) return hit;
    const first = Number((await this.store.getValue(`ob:first:${user}`)) ?? this.now());
    const n = this.config.learning_days;
    const learned = dayOf(first) <= today - n;
    let recipients = 0;
    let domains = 0;
    if (learned) {
      for (let d = today - n; d < today; d++) {
        recipients += await this.store.get(this.key('rcpt', user, d));
        domains += await this.store.get(this.key('dom', user, d));
      }
    }
    const u: Usual = { learned, recipients: recipients / n, domains: domains / n };
    if (this.usualCache.size > 10_000) this.usualCache.clear();
    this.usualCache.set(cacheKey, u);
    return u;
  }

  /** Counts a delivery outcome of the user's mail; returns today's failures and successes. */
  async outcome(user: string, delivered: boolean): Promise<{ failures: number; deliveries: number }> {
    const day = dayOf(this.now());
    const bumped = await this.store.incr(this.key(delivered ? 'ok' : 'fail', user, day), this.keepMs);
    const other = await this.store.get(this.key(delivered ? 'fail' : 'ok', user, day));
    return delivered ? { failures: other, deliveries: bumped } : { failures: bumped, deliveries: other };
  }

  /**
   * Remembers the network (IPv4 /24, IPv6 /48) the user logged in from. New when the user has
   * logged in or sent before and this network was not seen for `network_memory`; returns the
   * number of new networks today (0 when this one is not new).
   */
  async network(user: string, ip: string): Promise<{ net: string; isNew: boolean; today: number }> {
    const net = networkOf(ip, 24, 48);
    const key = `ob:net:${user}:${net}`;
    const seen = await this.store.getValue(key);
    const firstTime = await this.touch(user);
    await this.store.set(key, '1', this.config.network_memory);
    if (seen || firstTime) return { net, isNew: false, today: 0 };
    return { net, isNew: true, today: await this.store.incr(this.key('net', user), 2 * DAY) };
  }

  /** Counts a message held for its spam score; returns today's count. */
  async spamHold(user: string): Promise<number> {
    return this.store.incr(this.key('spam', user), 2 * DAY);
  }

  /** Forgets today's counts of the user (`user unlock`: the administrator vouched for today). */
  async forgetToday(user: string): Promise<void> {
    const counters: Counter[] = ['rcpt', 'dom', 'new', 'ok', 'fail', 'net', 'spam'];
    await Promise.all(counters.map((c) => this.store.delete(this.key(c, user))));
    for (const k of [...this.usualCache.keys()]) if (k.startsWith(`${user}\n`)) this.usualCache.delete(k);
  }
}

/** Today against the usual day: volume and spread. */
export function judgeDay(today: Today, usual: Usual, c: BaselineConfig): Trip | undefined {
  if (!c.enabled || !usual.learned) return undefined;
  const vol = Math.max(c.min_volume, c.volume_factor * usual.recipients);
  if (c.min_volume && today.recipients > vol) {
    return { code: 'baseline_volume', text: `${today.recipients} recipients today are more than ${c.volume_factor} times this account's usual ${round(usual.recipients)} a day` };
  }
  const spread = Math.max(c.min_spread, c.spread_factor * usual.domains);
  if (c.min_spread && today.domains > spread) {
    return { code: 'baseline_spread', text: `${today.domains} recipient domains today are more than ${c.spread_factor} times this account's usual ${round(usual.domains)} a day` };
  }
  return undefined;
}

/** Today's delivery failures (5xx, bounces) against the outcomes. */
export function judgeFailures(o: { failures: number; deliveries: number }, c: BaselineConfig): Trip | undefined {
  if (!c.enabled || !c.min_failures || o.failures < c.min_failures) return undefined;
  const rate = o.failures / (o.failures + o.deliveries);
  if (rate <= c.max_failure_rate) return undefined;
  return { code: 'baseline_failures', text: `${o.failures} of ${o.failures + o.deliveries} deliveries today failed (more than ${Math.round(c.max_failure_rate * 100)}%)` };
}

export function judgeNetworks(today: number, c: BaselineConfig): Trip | undefined {
  if (!c.enabled || !c.new_networks_per_day || today <= c.new_networks_per_day) return undefined;
  return { code: 'new_networks', text: `${today} new networks at login today exceed the limit of ${c.new_networks_per_day}` };
}

export function judgeSpam(today: number, c: BaselineConfig): Trip | undefined {
  if (!c.enabled || !c.spam_holds_per_day || today < c.spam_holds_per_day) return undefined;
  return { code: 'spam_holds', text: `${today} messages held for spam today reach the limit of ${c.spam_holds_per_day}` };
}

export function judgeComplaints(week: number, c: BaselineConfig): Trip | undefined {
  if (!c.enabled || !c.complaints_per_week || week < c.complaints_per_week) return undefined;
  return { code: 'complaints', text: `${week} complaint reports about this account's mail in 7 days reach the limit of ${c.complaints_per_week}` };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
