// Accounts and addresses the end-to-end tests share.
import assert from 'node:assert/strict';
import type { Reply } from './smtp-client.js';

/** Accounts created through the CLI (`user add ADDR --password-stdin`); passwords ≥ 10 characters. */
export const USERS = {
  alice: { address: 'alice@example.test', password: 'Vq7#rT2m-Lx9pWz4' },
  bob: { address: 'bob@example.test', password: 'Hn4$kP8s-Qd2vYc6' },
  carol: { address: 'carol@second.test', password: 'Zt5&wB3j-Mf7nRe1' },
} as const;

export const userMap = (...names: Array<keyof typeof USERS>): Record<string, string> =>
  Object.fromEntries(names.map((n) => [USERS[n].address, USERS[n].password]));

/** An external sender (not local, not a relay domain). */
export const EXT_SENDER = 'sender@example.net';

/** base64 of "\0user\0password" for AUTH PLAIN. */
export function plainToken(user: string, password: string): string {
  return Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
}

/** Asserts a reply's code (one or several allowed) and, when given, its enhanced code class/prefix. */
export function assertReply(r: Reply, codes: number | number[], enhanced?: string | RegExp, context = ''): void {
  const allowed = Array.isArray(codes) ? codes : [codes];
  assert.ok(allowed.includes(r.code), `expected ${allowed.join('/')} but got: ${r.raw}${context ? `\n${context}` : ''}`);
  if (enhanced !== undefined) {
    const ok = typeof enhanced === 'string' ? r.enhanced === enhanced : enhanced.test(r.enhanced ?? '');
    assert.ok(ok, `expected enhanced status ${String(enhanced)} but got: ${r.raw}${context ? `\n${context}` : ''}`);
  }
}
