// Signed links for the digests: "release this message" / "allow this sender", usable without
// logging in but only for that message and that user. A token is
//   base64url(JSON claim) "." base64url(HMAC-SHA256(key, that first part))
// with a key generated once under the data directory (`quarantine/links.key`, mode 0600). It
// expires (`expiresAt`) and is single-use: each claim carries a random token id, remembered in
// the gateway's StateStore until the token would have expired anyway. Refusals are distinct
// (LinkError: ALTERED, EXPIRED, REUSED) so that the console can say what happened.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StateStore } from '../store/store.js';
import { quarantineDir } from './quarantine.js';

export type LinkAction = 'release' | 'allow_sender';

export interface LinkRequest {
  /** The quarantine id. */
  readonly id: string;
  readonly recipient: string;
  readonly action: LinkAction;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** A verified, now spent, link. */
export interface LinkClaim extends LinkRequest {
  /** The token's own random id (what is remembered as used). */
  readonly tokenId: string;
}

export type LinkErrorCode = 'ALTERED' | 'EXPIRED' | 'REUSED';

export class LinkError extends Error {
  constructor(readonly code: LinkErrorCode, message: string) {
    super(message);
    this.name = 'LinkError';
  }
}

export interface LinksOptions {
  readonly dataDir: string;
  /** Where used token ids are remembered (the gateway's StateStore). */
  readonly store: StateStore;
  readonly now?: () => number;
}

export interface Links {
  signLink(req: LinkRequest): string;
  /** Verifies and spends a token; throws LinkError ALTERED / EXPIRED / REUSED. */
  consumeLink(token: string): Promise<LinkClaim>;
  /** Verifies without spending (to show a confirmation page first); throws ALTERED / EXPIRED / REUSED. */
  verifyLink(token: string): Promise<LinkClaim>;
}

const KEY_FILE = 'links.key';
const MAX_TOKEN = 2048;
const ACTIONS: readonly LinkAction[] = ['release', 'allow_sender'];

/** The HMAC key: read, or generated once (exclusive create, so two processes agree on one). */
export function linkKey(dataDir: string): Buffer {
  const dir = quarantineDir(dataDir);
  const file = path.join(dir, KEY_FILE);
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
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a link key (64 hex digits); remove it to make a new one (outstanding links stop working)`);
  return Buffer.from(hex, 'hex');
}

export function createLinks(opts: LinksOptions): Links {
  const key = linkKey(opts.dataDir);
  const now = opts.now ?? Date.now;
  const mac = (data: string) => crypto.createHmac('sha256', key).update(data).digest();

  const verify = async (token: string): Promise<LinkClaim> => {
    if (typeof token !== 'string' || token.length > MAX_TOKEN) throw new LinkError('ALTERED', 'not a valid link');
    const [body, sig, extra] = token.split('.');
    if (!body || !sig || extra !== undefined) throw new LinkError('ALTERED', 'not a valid link');
    // Compared as text, not as decoded bytes: base64url's last character carries spare bits, so
    // decoding would accept four spellings of one signature (a link "altered" yet still valid).
    const given = Buffer.from(sig, 'latin1');
    const want = Buffer.from(mac(body).toString('base64url'), 'latin1');
    if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) throw new LinkError('ALTERED', 'the link was altered or is not ours');
    let claim: LinkClaim;
    try {
      const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { t: string; i: string; r: string; a: LinkAction; e: number };
      claim = { tokenId: String(c.t), id: String(c.i), recipient: String(c.r), action: c.a, expiresAt: Number(c.e) };
    } catch {
      throw new LinkError('ALTERED', 'not a valid link');
    }
    if (!ACTIONS.includes(claim.action) || !Number.isFinite(claim.expiresAt)) throw new LinkError('ALTERED', 'not a valid link');
    if (now() >= claim.expiresAt) throw new LinkError('EXPIRED', `the link expired at ${new Date(claim.expiresAt).toISOString()}`);
    if (await opts.store.getValue(usedKey(claim.tokenId))) throw new LinkError('REUSED', 'the link was already used');
    return claim;
  };

  return {
    signLink(req) {
      if (!ACTIONS.includes(req.action)) throw new Error(`link action must be one of ${ACTIONS.join(', ')}`);
      const claim = { t: crypto.randomBytes(12).toString('base64url'), i: req.id, r: req.recipient.toLowerCase(), a: req.action, e: Math.floor(req.expiresAt) };
      const body = Buffer.from(JSON.stringify(claim)).toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    verifyLink: verify,
    async consumeLink(token) {
      const claim = await verify(token);
      // incr is atomic in every backend: of two simultaneous uses, only the first counts 1.
      const uses = await opts.store.incr(usedKey(claim.tokenId), Math.max(1, claim.expiresAt - now()));
      if (uses > 1) throw new LinkError('REUSED', 'the link was already used');
      return claim;
    },
  };
}

const usedKey = (tokenId: string) => `qlink:used:${tokenId}`;
