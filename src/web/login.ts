// The one password check of the console, the same as SMTP AUTH, IMAP and POP3 do it
// (src/smtp/session.ts verify()): the shared brute-force defence first (a blocked source gets
// the same answer after the same delay, its password not even checked), then the account store.
import type { AccountStore } from '../auth/accounts.js';
import type { BruteForce } from '../auth/brute-force.js';

export type LoginResult = { ok: true; account: string } | { ok: false; account: string; blocked?: string };

export async function checkLogin(deps: { accounts: AccountStore; bruteForce: BruteForce }, ip: string, user: string, pass: string): Promise<LoginResult> {
  const account = user.trim().toLowerCase().slice(0, 320);
  const verdict = await deps.bruteForce.before(ip, account || '(malformed)');
  const ok = !verdict.blocked && account !== '' && user.length <= 320 && pass.length <= 1024 && (await deps.accounts.authenticate(user, pass));
  if (verdict.delayMs) await new Promise((r) => setTimeout(r, verdict.delayMs));
  if (!ok) {
    await deps.bruteForce.failure(ip, account || '(malformed)');
    return { ok: false, account, blocked: verdict.blocked };
  }
  await deps.bruteForce.success(ip, account);
  return { ok: true, account };
}
