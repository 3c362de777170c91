// The brute-force defence shared by every protocol that takes a password (SMTP AUTH now; IMAP,
// POP3 and the web console later). State lives in the state store, so several gateway nodes
// sharing a Redis store throttle an attacker together.
//
// What it does, per failed login:
//  - counts failures per (IP, account), per IP, per network (/24 for IPv4, /64 for IPv6) and
//    per account, in a fixed window;
//  - answers the next attempt from that source only after a delay that doubles with the
//    source's failures (the tarpit: guessing costs the attacker time, us only a timer);
//  - past `pair_limit` failures blocks the (IP, account) pair, past `ip_limit` the whole IP,
//    past `net_limit` the network, for `block_time`;
//  - never blocks an account as such: a real user logging in from a network where it has logged
//    in before is exempt from network blocks, and an attacker elsewhere only blocks himself;
//  - raises a spraying alert when one IP fails on many accounts, or one account fails from many
//    IPs, within the window.
// A blocked attempt gets the same reply and the same delay as a wrong password, so an attacker
// learns nothing from it; the password is then not even checked.
import { networkOf } from '../net/cidr.js';
import type { StateStore } from '../store/store.js';

export interface BruteForceConfig {
  readonly window: number;
  readonly block_time: number;
  readonly pair_limit: number;
  readonly ip_limit: number;
  readonly net_limit: number;
  readonly base_delay: number;
  readonly max_delay: number;
  readonly spray_accounts: number;
  readonly spray_sources: number;
  /** How long a network where an account logged in counts as its usual one. */
  readonly known_network_ttl: number;
}

export type BlockScope = 'pair' | 'ip' | 'net';

export interface Verdict {
  /** Wait this long before answering (the tarpit). */
  readonly delayMs: number;
  /** Blocked: answer "authentication failed" without checking the password. */
  readonly blocked?: BlockScope;
}

export interface BruteForceEvents {
  blocked?(scope: BlockScope, ip: string, account: string, untilMs: number): void;
  spraying?(kind: 'accounts_from_ip' | 'sources_for_account', ip: string, account: string, count: number): void;
}

// Keys are short and structured so `portcullis auth status` can find them by prefix.
const K = {
  pair: (ip: string, acct: string) => `bf:f:pair:${ip}|${acct}`,
  ip: (ip: string) => `bf:f:ip:${ip}`,
  net: (n: string) => `bf:f:net:${n}`,
  acct: (acct: string) => `bf:f:acct:${acct}`,
  blockPair: (ip: string, acct: string) => `bf:b:pair:${ip}|${acct}`,
  blockIp: (ip: string) => `bf:b:ip:${ip}`,
  blockNet: (n: string) => `bf:b:net:${n}`,
  sprayIp: (ip: string, acct: string) => `bf:s:ip:${ip}|${acct}`,
  sprayAcct: (acct: string, ip: string) => `bf:s:acct:${acct}|${ip}`,
  known: (acct: string, n: string) => `bf:k:net:${acct}|${n}`,
  alerted: (kind: string, who: string) => `bf:a:${kind}:${who}`,
};

export class BruteForce {
  constructor(
    private readonly store: StateStore,
    private readonly cfg: BruteForceConfig,
    private readonly events: BruteForceEvents = {},
  ) {}

  private delayFor(failures: number): number {
    if (failures <= 0) return 0;
    return Math.min(this.cfg.max_delay, this.cfg.base_delay * 2 ** (failures - 1));
  }

  /** Before checking a password: how long to wait, and whether the source is blocked. */
  async before(ip: string, account: string): Promise<Verdict> {
    const acct = account.toLowerCase();
    const n = networkOf(ip);
    const [pairBlock, ipBlock, netBlock, ipFails, pairFails] = await Promise.all([
      this.store.getValue(K.blockPair(ip, acct)),
      this.store.getValue(K.blockIp(ip)),
      this.store.getValue(K.blockNet(n)),
      this.store.get(K.ip(ip)),
      this.store.get(K.pair(ip, acct)),
    ]);
    const delayMs = this.delayFor(Math.max(ipFails, pairFails));
    if (pairBlock) return { delayMs, blocked: 'pair' };
    if (ipBlock) return { delayMs, blocked: 'ip' };
    if (netBlock && !(await this.store.getValue(K.known(acct, n)))) return { delayMs, blocked: 'net' };
    return { delayMs };
  }

  /** After a failed login (wrong password, unknown user, malformed exchange). */
  async failure(ip: string, account: string): Promise<void> {
    const acct = account.toLowerCase().slice(0, 320);
    const n = networkOf(ip);
    const w = this.cfg.window;
    const [pair, ipCount, netCount] = await Promise.all([
      this.store.incr(K.pair(ip, acct), w),
      this.store.incr(K.ip(ip), w),
      this.store.incr(K.net(n), w),
      this.store.incr(K.acct(acct), w),
      this.store.set(K.sprayIp(ip, acct), '1', w),
      this.store.set(K.sprayAcct(acct, ip), '1', w),
    ]);
    const until = Date.now() + this.cfg.block_time;
    const block = async (scope: BlockScope, key: string) => {
      if (await this.store.getValue(key)) return;
      await this.store.set(key, String(until), this.cfg.block_time);
      this.events.blocked?.(scope, ip, acct, until);
    };
    if (pair >= this.cfg.pair_limit) await block('pair', K.blockPair(ip, acct));
    if (ipCount >= this.cfg.ip_limit) await block('ip', K.blockIp(ip));
    if (netCount >= this.cfg.net_limit) await block('net', K.blockNet(n));
    await this.spraying(ip, acct);
  }

  private async spraying(ip: string, acct: string): Promise<void> {
    const accounts = await this.store.scan(`bf:s:ip:${ip}|`, this.cfg.spray_accounts);
    if (accounts.length >= this.cfg.spray_accounts && !(await this.store.getValue(K.alerted('ip', ip)))) {
      await this.store.set(K.alerted('ip', ip), '1', this.cfg.window);
      this.events.spraying?.('accounts_from_ip', ip, acct, accounts.length);
    }
    const sources = await this.store.scan(`bf:s:acct:${acct}|`, this.cfg.spray_sources);
    if (sources.length >= this.cfg.spray_sources && !(await this.store.getValue(K.alerted('acct', acct)))) {
      await this.store.set(K.alerted('acct', acct), '1', this.cfg.window);
      this.events.spraying?.('sources_for_account', ip, acct, sources.length);
    }
  }

  /** After a successful login: forget this pair's failures, remember the user's network. */
  async success(ip: string, account: string): Promise<void> {
    const acct = account.toLowerCase();
    await Promise.all([
      this.store.delete(K.pair(ip, acct)),
      this.store.set(K.known(acct, networkOf(ip)), '1', this.cfg.known_network_ttl),
    ]);
  }

  /** Failures recorded for an IP in the current window (a hint for other defences). */
  async ipFailures(ip: string): Promise<{ failures: number; blocked: boolean }> {
    const [failures, blocked] = await Promise.all([this.store.get(K.ip(ip)), this.store.getValue(K.blockIp(ip))]);
    return { failures, blocked: !!blocked };
  }

  /** Everything recorded about an account (contains "@") or an IP address, for the CLI. */
  async status(subject: string): Promise<{ key: string; value: string; expiresAt?: number }[]> {
    const s = subject.toLowerCase();
    const rows = await this.store.scan('bf:', 10_000);
    return rows.filter((r) => {
      const rest = r.key.split(':').slice(3).join(':');
      return rest === s || rest.startsWith(`${s}|`) || rest.endsWith(`|${s}`) || (!s.includes('@') && rest === networkOf(s));
    });
  }

  /** Lifts every block and failure count naming the account or IP; returns how many were removed. */
  async unblock(subject: string): Promise<number> {
    let n = 0;
    for (const r of await this.status(subject)) {
      if (r.key.startsWith('bf:k:')) continue; // keep known networks
      if (await this.store.delete(r.key)) n++;
    }
    return n;
  }
}
