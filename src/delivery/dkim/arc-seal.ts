// ARC sealing (RFC 8617) of mail we forward to outside addresses, with mailauth's sealMessage.
// The seal records what we verified on arrival: the ARC-Authentication-Results copy our own
// Authentication-Results field (authserv-id = our host name, in the queued prefix), and the
// chain validation (cv=) follows its arc= result: none → cv=none (we open the chain, i=1),
// pass → cv=pass (we extend it). A failed chain, or mail we did not verify (no arc= result of
// ours), is not sealed: a seal would vouch for what we could not check.
import type { Readable } from 'node:stream';
import { sealMessage } from 'mailauth/lib/arc/index.js';
import type { DkimKey } from './keys.js';

/** Our Authentication-Results value (unfolded, "host; method=result; …"), the first such field of `head`. */
export function ourAuthResults(head: Buffer, authservId: string): string | undefined {
  const end = head.indexOf('\r\n\r\n');
  const text = head.subarray(0, end < 0 ? head.length : end).toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  const id = authservId.toLowerCase();
  for (const m of text.matchAll(/^Authentication-Results:[ \t]*(.*)$/gim)) {
    const value = m[1]!.trim();
    if (value.slice(0, value.indexOf(';') < 0 ? value.length : value.indexOf(';')).trim().toLowerCase() === id) return value.replace(/[ \t]+/g, ' ');
  }
  return undefined;
}

export type SealDecision = { seal: true; cv: 'none' | 'pass'; authResults: string } | { seal: false; reason: string };

/** Whether and how to seal, from the head of the queued message. */
export function sealDecision(head: Buffer, authservId: string): SealDecision {
  const authResults = ourAuthResults(head, authservId);
  if (!authResults) return { seal: false, reason: `no Authentication-Results of ${authservId}: not verified here` };
  const arc = /(?:^|;)\s*arc=([a-z]+)/i.exec(authResults)?.[1]?.toLowerCase();
  if (arc === 'none') return { seal: true, cv: 'none', authResults };
  if (arc === 'pass') return { seal: true, cv: 'pass', authResults };
  return { seal: false, reason: arc ? `the ARC chain it came with is arc=${arc}` : 'no arc= result of ours (ARC verification off)' };
}

/** The ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results fields to prepend. */
export async function arcSeal(input: Buffer | Readable, key: DkimKey, decision: Extract<SealDecision, { seal: true }>, now = new Date()): Promise<Buffer> {
  return sealMessage(input, {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKeyPem,
    algorithm: key.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
    authResults: decision.authResults,
    cv: decision.cv,
    signTime: now,
  } as never);
}
