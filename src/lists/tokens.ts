// Signed tokens for list confirmations and unsubscribe links, the same construction as the
// quarantine's digest links (src/quarantine/links.ts):
//   base64url(JSON claim) "." base64url(HMAC-SHA256(key, that first part))
// with its own key under the data directory (`lists/tokens.key`, mode 0600). A confirmation
// (`subscribe`, `unsubscribe`) expires and is single-use: its random id is remembered in the
// StateStore until it would have expired anyway, so several nodes on one Redis agree. The
// one-click unsubscribe token (`leave`, RFC 8058) is put in every post; it does not expire
// and may be used again (unsubscribing twice is harmless, and a mail client may retry).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StateStore } from '../store/store.js';

export type TokenAction = 'subscribe' | 'unsubscribe' | 'leave';

export interface TokenClaim {
  readonly id: string;
  readonly list: string;
  readonly address: string;
  readonly action: TokenAction;
  /** Epoch ms; 0 for `leave` (no expiry). */
  readonly expiresAt: number;
}

export type TokenErrorCode = 'ALTERED' | 'EXPIRED' | 'REUSED';

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(readonly code: TokenErrorCode, message: string) {
    super(message);
  }
}

const MAX_TOKEN = 2048;
const ACTIONS: readonly TokenAction[] = ['subscribe', 'unsubscribe', 'leave'];
/** Token ids remembered as used for at least this long (a `leave` token is never spent). */
const usedKey = (id: string) => `list:used:${id}`;

/** The HMAC key: read, or made once (exclusive create, so two processes agree on one). */
export function tokenKey(dataDir: string): Buffer {
  const dir = path.join(dataDir, 'lists');
  const file = path.join(dir, 'tokens.key');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${crypto.randomBytes(32).toString('hex')}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const hex = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a token key (64 hex digits); remove it to make a new one (outstanding links stop working)`);
  return Buffer.from(hex, 'hex');
}

export class ListTokens {
  constructor(private readonly key: Buffer, private readonly store: StateStore, private readonly now: () => number = Date.now) {}

  sign(list: string, address: string, action: TokenAction, ttlMs: number): string {
    const claim = { t: crypto.randomBytes(12).toString('base64url'), l: list, r: address, a: action, e: action === 'leave' ? 0 : Math.floor(this.now() + ttlMs) };
    const body = Buffer.from(JSON.stringify(claim)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** Verifies without spending (to show the confirmation page); TokenError ALTERED / EXPIRED / REUSED. */
  async verify(token: string): Promise<TokenClaim> {
    if (typeof token !== 'string' || token.length > MAX_TOKEN) throw new TokenError('ALTERED', 'not a valid link');
    const [body, sig, extra] = token.split('.');
    if (!body || !sig || extra !== undefined) throw new TokenError('ALTERED', 'not a valid link');
    // Compared as text: base64url's last character has spare bits (see quarantine/links.ts).
    const given = Buffer.from(sig, 'latin1');
    const want = Buffer.from(this.mac(body), 'latin1');
    if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) throw new TokenError('ALTERED', 'the link was altered or is not ours');
    let claim: TokenClaim;
    try {
      const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { t: string; l: string; r: string; a: TokenAction; e: number };
      claim = { id: String(c.t), list: String(c.l), address: String(c.r), action: c.a, expiresAt: Number(c.e) };
    } catch {
      throw new TokenError('ALTERED', 'not a valid link');
    }
    if (!ACTIONS.includes(claim.action) || !Number.isFinite(claim.expiresAt)) throw new TokenError('ALTERED', 'not a valid link');
    if (claim.action !== 'leave' && this.now() >= claim.expiresAt) throw new TokenError('EXPIRED', `the link expired at ${new Date(claim.expiresAt).toISOString()}`);
    if (claim.action !== 'leave' && (await this.store.getValue(usedKey(claim.id)))) throw new TokenError('REUSED', 'the link was already used');
    return claim;
  }

  /** Verifies and spends (a `leave` token is not spent). */
  async consume(token: string): Promise<TokenClaim> {
    const claim = await this.verify(token);
    if (claim.action === 'leave') return claim;
    // incr is atomic in every backend: of two simultaneous uses only the first counts 1.
    const uses = await this.store.incr(usedKey(claim.id), Math.max(1, claim.expiresAt - this.now()));
    if (uses > 1) throw new TokenError('REUSED', 'the link was already used');
    return claim;
  }

  /** The token inside a text (a reply quoting the confirmation request), if any. */
  static find(text: string): string | undefined {
    return /\b([A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{43})\b/.exec(text)?.[1];
  }

  private mac(body: string): string {
    return crypto.createHmac('sha256', this.key).update(body).digest('base64url');
  }
}
