// Signed links for the digests: "release this message" / "allow this sender", usable without
// logging in but only for that message and that user. The token is the one signed-token format
// (src/auth/signed-token.ts) with a key generated once under the data directory
// (`quarantine/links.key`, mode 0600); the claim carries the quarantine id `i`, the recipient `r`
// and the action `a`. It expires (`expiresAt`) and is single-use: each token's random id is
// remembered in the gateway's StateStore until the token would have expired anyway. Refusals
// are distinct (LinkError: ALTERED, EXPIRED, REUSED) so that the console can say what happened.
import path from 'node:path';
import type { StateStore } from '../store/store.js';
import { SignedTokens, tokenKeyFile, type TokenRefusal } from '../auth/signed-token.js';
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

export type LinkErrorCode = TokenRefusal;

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
const ACTIONS: readonly LinkAction[] = ['release', 'allow_sender'];

/** The HMAC key: read, or generated once (exclusive create, so two processes agree on one). */
export function linkKey(dataDir: string): Buffer {
  return tokenKeyFile(path.join(quarantineDir(dataDir), KEY_FILE), 'link key');
}

export function createLinks(opts: LinksOptions): Links {
  const now = opts.now ?? Date.now;
  const tokens = new SignedTokens({ key: linkKey(opts.dataDir), now, refuse: (code, message) => new LinkError(code, message) });

  const verify = async (token: string): Promise<LinkClaim> => {
    const { tokenId, expiresAt, fields: c } = tokens.verify(token);
    const claim: LinkClaim = { tokenId, id: String(c.i), recipient: String(c.r), action: c.a as LinkAction, expiresAt: expiresAt ?? NaN };
    if (!ACTIONS.includes(claim.action) || expiresAt === null) throw new LinkError('ALTERED', 'not a valid link');
    if (await opts.store.getValue(usedKey(claim.tokenId))) throw new LinkError('REUSED', 'the link was already used');
    return claim;
  };

  return {
    signLink(req) {
      if (!ACTIONS.includes(req.action)) throw new Error(`link action must be one of ${ACTIONS.join(', ')}`);
      return tokens.sign({ i: req.id, r: req.recipient.toLowerCase(), a: req.action }, req.expiresAt);
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
