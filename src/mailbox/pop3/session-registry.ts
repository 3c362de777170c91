// Who is connected, for the limits and the one-session-per-mailbox lock. Process memory on
// purpose: one gateway process serves a data directory (gateway.ts takes a pid lock on it), so
// every POP3 session on these Maildirs passes through here, and a crashed process takes its
// locks with it — nothing on disk can be left behind to lock a mailbox forever.

export class SessionRegistry {
  private readonly perIp = new Map<string, number>();
  private readonly perUser = new Map<string, number>();
  private readonly locked = new Set<string>();
  private count = 0;

  constructor(private readonly limits: { readonly total: number; readonly perIp: number; readonly perUser: number }) {}

  get sessions(): number {
    return this.count;
  }

  /** A new connection: 'total' or 'ip' when a limit refuses it (nothing is counted then). */
  admit(ip: string): 'total' | 'ip' | undefined {
    if (this.count >= this.limits.total) return 'total';
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.limits.perIp) return 'ip';
    this.perIp.set(ip, n + 1);
    this.count++;
    return undefined;
  }

  leave(ip: string): void {
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
    this.count = Math.max(0, this.count - 1);
  }

  /** A session starts checking a password for `user` (and keeps the slot if it logs in). */
  enterUser(user: string): boolean {
    const n = this.perUser.get(user) ?? 0;
    if (n >= this.limits.perUser) return false;
    this.perUser.set(user, n + 1);
    return true;
  }

  leaveUser(user: string): void {
    const n = (this.perUser.get(user) ?? 1) - 1;
    if (n > 0) this.perUser.set(user, n);
    else this.perUser.delete(user);
  }

  /** The exclusive POP3 lock on a mailbox (RFC 1939 s4: the maildrop is locked for the session). */
  lock(mailboxDir: string): boolean {
    if (this.locked.has(mailboxDir)) return false;
    this.locked.add(mailboxDir);
    return true;
  }

  unlock(mailboxDir: string): void {
    this.locked.delete(mailboxDir);
  }
}
