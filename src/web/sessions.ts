// Console sessions: kept in memory (a restart logs everyone out, which is acceptable for an
// administration console and keeps session ids off the disk). Every visitor gets a session
// before logging in, so the login form carries a CSRF token too; logging in replaces the
// session with a fresh id (no fixation: an id planted before login is worthless after it).
import crypto from 'node:crypto';

export interface ConsoleSession {
  readonly id: string;
  /** Per session, in every state-changing form (hidden field `_csrf`). */
  readonly csrf: string;
  readonly user?: string;
  readonly admin: boolean;
  lastSeen: number;
}

/** `__Host-`: the browser keeps it only when Secure, Path=/ and without Domain (no subdomain can set it). */
export const SESSION_COOKIE = '__Host-portcullis';

/** Most sessions kept; the least recently used go first (an anonymous flood cannot exhaust memory). */
const MAX_SESSIONS = 10_000;

const newToken = () => crypto.randomBytes(32).toString('base64url');

export class SessionStore {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(private readonly idleMs: number, private readonly now: () => number = Date.now) {}

  /** The live session for a cookie value, touched; undefined when unknown or idle too long. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (this.now() - s.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = this.now();
    // Re-insert: Map order is the LRU order.
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  create(user?: string, admin = false): ConsoleSession {
    const s: ConsoleSession = { id: newToken(), csrf: newToken(), user, admin: !!user && admin, lastSeen: this.now() };
    this.sessions.set(s.id, s);
    if (this.sessions.size > MAX_SESSIONS) this.evict();
    return s;
  }

  /** The least recently used anonymous session goes first: a flood of visitors must not log users out. */
  private evict(): void {
    for (const [id, s] of this.sessions) {
      if (!s.user) {
        this.sessions.delete(id);
        return;
      }
    }
    this.sessions.delete(this.sessions.keys().next().value!);
  }

  /** Ends `old` (if any) and starts a logged-in session under a new id. */
  login(old: ConsoleSession | undefined, user: string, admin: boolean): ConsoleSession {
    if (old) this.sessions.delete(old.id);
    return this.create(user, admin);
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of a user (password changed or reset, account deleted). */
  destroyUser(user: string, except?: string): void {
    for (const [id, s] of this.sessions) if (s.user === user && id !== except) this.sessions.delete(id);
  }
}

/** Constant-time comparison of the submitted token with the session's. */
export function csrfMatches(session: ConsoleSession, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(submitted);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
