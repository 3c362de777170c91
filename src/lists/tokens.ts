// Signed tokens for list confirmations and unsubscribe links: the one signed-token format
// (src/auth/signed-token.ts, shared with the quarantine's digest links), the claim carrying the
// list `l`, the address `r` and the action `a`, with its own key under the data directory
// (`lists/tokens.key`, mode 0600). A confirmation (`subscribe`, `unsubscribe`) expires and is
// single-use: its random id is remembered in the StateStore until it would have expired anyway,
// so several nodes on one Redis agree. The one-click unsubscribe token (`leave`, RFC 8058) is put
// in every post; it does not expire and may be used again (unsubscribing twice is harmless, and
// a mail client may retry).
import path from 'node:path';
import type { StateStore } from '../store/store.js';
import { SignedTokens, tokenKeyFile, type TokenRefusal } from '../auth/signed-token.js';

export type TokenAction = 'subscribe' | 'unsubscribe' | 'leave';

export interface TokenClaim {
  readonly id: string;
  readonly list: string;
  readonly address: string;
  readonly action: TokenAction;
  /** Epoch ms; 0 for `leave` (no expiry). */
  readonly expiresAt: number;
}

export type TokenErrorCode = TokenRefusal;

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(readonly code: TokenErrorCode, message: string) {
    super(message);
  }
}

const ACTIONS: readonly TokenAction[] = ['subscribe', 'unsubscribe', 'leave'];
/** Token ids remembered as used for at least this long (a `leave` token is never spent). */
const usedKey = (id: string) => `list:used:${id}`;

/** The HMAC key: read, or made once (exclusive create, so two processes agree on one). */
export function tokenKey(dataDir: string): Buffer {
  return tokenKeyFile(path.join(dataDir, 'lists', 'tokens.key'), 'token key');
}

export class ListTokens {
  private readonly tokens: SignedTokens;

  constructor(key: Buffer, private readonly store: StateStore, private readonly now: () => number = Date.now) {
    this.tokens = new SignedTokens({ key, now, refuse: (code, message) => new TokenError(code, message) });
  }

  sign(list: string, address: string, action: TokenAction, ttlMs: number): string {
    return this.tokens.sign({ l: list, r: address, a: action }, action === 'leave' ? null : this.now() + ttlMs);
  }

  /** Verifies without spending (to show the confirmation page); TokenError ALTERED / EXPIRED / REUSED. */
  async verify(token: string): Promise<TokenClaim> {
    const { tokenId, expiresAt, fields: c } = this.tokens.verify(token);
    const claim: TokenClaim = { id: tokenId, list: String(c.l), address: String(c.r), action: c.a as TokenAction, expiresAt: expiresAt ?? 0 };
    // Only `leave` lives for ever; a confirmation always has its expiry.
    if (!ACTIONS.includes(claim.action) || (claim.action !== 'leave' && expiresAt === null)) throw new TokenError('ALTERED', 'not a valid link');
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
}
