// Per-client limits (Postfix's anvil): concurrent connections per IP and per network held in
// memory (they are this node's sockets), rates of connections, messages and recipients per IP
// and network in the state store (so several nodes sharing a store throttle together).
// Trusted networks are exempt; authenticated clients are exempt from the message rates (their
// outbound limits belong to the submission policy).
import type { LimitsConfig } from './config.js';
import type { StateStore } from '../store/store.js';
import { reply, type Reply } from '../protocol/reply.js';
import { networkOf } from '../net/cidr.js';

type Limits = LimitsConfig;

export class ClientLimits {
  private readonly perIp = new Map<string, number>();
  private readonly perNet = new Map<string, number>();

  constructor(private readonly limits: Limits, private readonly store: StateStore, private readonly hostname: string) {}

  private net(ip: string): string {
    return networkOf(ip, this.limits.ipv4_prefix, this.limits.ipv6_prefix);
  }

  /** Counts a new connection; a reply (421) when it is over a limit, with the connection not counted. */
  async admit(ip: string): Promise<Reply | undefined> {
    const l = this.limits;
    const net = this.net(ip);
    const ipCount = this.perIp.get(ip) ?? 0;
    const netCount = this.perNet.get(net) ?? 0;
    if (l.connections_per_ip && ipCount >= l.connections_per_ip) return this.tooMany(ip);
    if (l.connections_per_net && netCount >= l.connections_per_net) return this.tooMany(ip, net);
    if (l.connection_rate_per_ip && (await this.store.hit(`rate:conn:ip:${ip}`, l.window)) > l.connection_rate_per_ip) {
      return reply(421, '4.7.0', `${this.hostname} Error: too many connections from ${ip}, try again later`);
    }
    if (l.connection_rate_per_net && (await this.store.hit(`rate:conn:net:${net}`, l.window)) > l.connection_rate_per_net) {
      return reply(421, '4.7.0', `${this.hostname} Error: too many connections from ${net}, try again later`);
    }
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.perNet.set(net, (this.perNet.get(net) ?? 0) + 1);
    return undefined;
  }

  /** Forgets a connection counted by admit(). */
  release(ip: string): void {
    for (const [map, key] of [[this.perIp, ip], [this.perNet, this.net(ip)]] as const) {
      const n = (map.get(key) ?? 1) - 1;
      if (n <= 0) map.delete(key);
      else map.set(key, n);
    }
  }

  /** At MAIL FROM: a 450 when the client has sent too many messages in the window. */
  async message(ip: string): Promise<Reply | undefined> {
    const max = this.limits.messages_per_ip;
    if (!max || (await this.store.hit(`rate:msg:ip:${ip}`, this.limits.window)) <= max) return undefined;
    return reply(450, '4.7.1', `Error: too much mail from ${ip}, try again later`);
  }

  /** At RCPT TO: a 450 when the client has named too many recipients in the window. */
  async recipient(ip: string): Promise<Reply | undefined> {
    const max = this.limits.recipients_per_ip;
    if (!max || (await this.store.hit(`rate:rcpt:ip:${ip}`, this.limits.window)) <= max) return undefined;
    return reply(450, '4.7.1', `Error: too many recipients from ${ip}, try again later`);
  }

  connections(ip: string): { ip: number; net: number } {
    return { ip: this.perIp.get(ip) ?? 0, net: this.perNet.get(this.net(ip)) ?? 0 };
  }

  private tooMany(ip: string, net?: string): Reply {
    return reply(421, '4.7.0', `${this.hostname} Error: too many connections from ${net ?? ip}`);
  }
}
