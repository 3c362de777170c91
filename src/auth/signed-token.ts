// Signed, expiring tokens for links that act without a login: the quarantine digest's
// "release" / "allow sender" links (src/quarantine/links.ts) and the lists' confirmation and
// unsubscribe links (src/lists/tokens.ts). A token is
//   base64url(JSON claim) "." base64url(HMAC-SHA256(key, that first part))
// where the claim is the caller's fields between a random token id `t` (first) and the expiry
// `e` (last; epoch ms, 0 for never), with a key made once per use under the data directory
// (mode 0600). Single use is the callers' business: each remembers spent token ids in its own
// StateStore keys (they differ in what may be reused: a one-click unsubscribe may be repeated).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type TokenRefusal = 'ALTERED' | 'EXPIRED' | 'REUSED';

/** Tokens longer than this are refused unread. */
const MAX_TOKEN = 2048;

/** The HMAC key in `file`: read, or made once (exclusive create, so two processes agree on one). */
export function tokenKeyFile(file: string, what: string): Buffer {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
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
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a ${what} (64 hex digits); remove it to make a new one (outstanding links stop working)`);
  return Buffer.from(hex, 'hex');
}

/** A verified token: its own random id, its expiry (null: never) and the caller's fields. */
export interface VerifiedToken {
  readonly tokenId: string;
  readonly expiresAt: number | null;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface SignedTokensOptions {
  readonly key: Buffer;
  readonly now?: () => number;
  /** The caller's error for a refusal (LinkError, TokenError), so that its callers catch one class. */
  readonly refuse: (code: TokenRefusal, message: string) => Error;
}

export class SignedTokens {
  private readonly now: () => number;

  constructor(private readonly opts: SignedTokensOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** `expiresAt`: epoch ms, or null for a token that never expires. */
  sign(fields: Readonly<Record<string, unknown>>, expiresAt: number | null): string {
    if (expiresAt !== null && !(Number.isFinite(expiresAt) && expiresAt > 0)) throw new Error('a token expires at a time after 1970, or never (null)');
    const claim = { t: crypto.randomBytes(12).toString('base64url'), ...fields, e: expiresAt === null ? 0 : Math.floor(expiresAt) };
    const body = Buffer.from(JSON.stringify(claim)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The token's claim when it is ours, unaltered and not expired; else the caller's error (ALTERED, EXPIRED). */
  verify(token: string): VerifiedToken {
    const refuse = this.opts.refuse;
    if (typeof token !== 'string' || token.length > MAX_TOKEN) throw refuse('ALTERED', 'not a valid link');
    const [body, sig, extra] = token.split('.');
    if (!body || !sig || extra !== undefined) throw refuse('ALTERED', 'not a valid link');
    // Compared as text, not as decoded bytes: base64url's last character carries spare bits, so
    // decoding would accept four spellings of one signature (a link "altered" yet still valid).
    const given = Buffer.from(sig, 'latin1');
    const want = Buffer.from(this.mac(body), 'latin1');
    if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) throw refuse('ALTERED', 'the link was altered or is not ours');
    let claim: Record<string, unknown>;
    try {
      claim = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw refuse('ALTERED', 'not a valid link');
    }
    if (!claim || typeof claim !== 'object' || Array.isArray(claim)) throw refuse('ALTERED', 'not a valid link');
    const { t, e, ...fields } = claim;
    const expiresAt = Number(e);
    if (!Number.isFinite(expiresAt)) throw refuse('ALTERED', 'not a valid link');
    if (expiresAt !== 0 && this.now() >= expiresAt) throw refuse('EXPIRED', `the link expired at ${new Date(expiresAt).toISOString()}`);
    return { tokenId: String(t), expiresAt: expiresAt === 0 ? null : expiresAt, fields };
  }

  private mac(body: string): string {
    return crypto.createHmac('sha256', this.opts.key).update(body).digest('base64url');
  }
}
