// One login for SMTP AUTH, IMAP and POP3 (issue 21): the SASL decoding (RFC 4648 base64 as
// RFC 4954 / 3501 / 5034 carry it, PLAIN's message of RFC 4616) and the password check behind the
// brute-force defence, with its rules in one place:
//   - a blocked source gets the same answer as a wrong password, after the same tarpit delay, and
//     its password is not even checked (nothing to learn from timing or wording);
//   - over-long names and passwords are refused unchecked (no scrypt on 1 MB of input);
//   - an authorisation identity other than the user (a proxy login) is refused like a wrong
//     password, counted against the pair;
//   - accounts that cannot be read (Redis down) are a temporary failure, not counted — never a
//     login whose password was not checked;
//   - a malformed exchange counts against the source like a wrong password.
// Each protocol maps the outcome to its own reply and log line; the web console's login form
// uses it too.
import type { BruteForce, BlockScope } from './brute-force.js';
import { isAccountsUnavailable } from './accounts.js';

/** Longest base64 SASL response accepted (PLAIN with the longest name and password fits). */
export const MAX_SASL_RESPONSE = 12_000;
const MAX_USER = 320;
const MAX_PASSWORD = 1024;

/**
 * A SASL response line: the decoded text; `null` for "*" (the client cancels); '' for "="
 * (an empty response); undefined for anything that is not canonical base64 (or too long).
 */
export function decodeSaslResponse(line: string): string | null | undefined {
  const t = line.trim();
  if (t === '*') return null;
  if (t === '=') return '';
  if (!t || t.length > MAX_SASL_RESPONSE || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(t)) return undefined;
  return Buffer.from(t, 'base64').toString('utf8');
}

/** RFC 4616: authzid NUL authcid NUL passwd; undefined when it is not that. */
export function parsePlain(decoded: string): { authz: string; user: string; pass: string } | undefined {
  const parts = decoded.split('\0');
  if (parts.length !== 3) return undefined;
  const [authz, user, pass] = parts as [string, string, string];
  return { authz, user, pass };
}

/** The account name a login is counted and logged under: trimmed, lower case, bounded. */
export function accountOf(user: string): string {
  return user.trim().toLowerCase().slice(0, MAX_USER);
}

export type LoginOutcome =
  | { readonly ok: true; readonly account: string }
  /** A wrong password, an unknown user or a blocked source: one answer for all three. */
  | { readonly ok: false; readonly reason: 'failed'; readonly account: string; readonly blocked?: BlockScope; readonly authz?: true }
  /** The accounts could not be read: "try again later", not counted. */
  | { readonly ok: false; readonly reason: 'unavailable'; readonly account: string; readonly error: string };

export interface LoginGuard {
  readonly bruteForce: BruteForce;
  readonly accounts: { authenticate(user: string, password: string): Promise<boolean> };
}

/**
 * Checks `pass` for `user` from `ip` behind the brute-force defence (the rules above). `authz` is
 * PLAIN's authorisation identity, if any. Waits the tarpit delay before resolving.
 */
export async function checkLogin(guard: LoginGuard, ip: string, user: string, pass: string, authz = ''): Promise<LoginOutcome> {
  const account = accountOf(user);
  // An empty name is counted as a malformed exchange, and never looked up.
  const key = account || '(malformed)';
  const bf = guard.bruteForce;
  const verdict = await bf.before(ip, key);
  const proxy = !!authz && authz.toLowerCase() !== user.toLowerCase();
  let ok: boolean;
  try {
    ok = !verdict.blocked && !proxy && account !== '' && user.length <= MAX_USER && pass.length <= MAX_PASSWORD && (await guard.accounts.authenticate(user, pass));
  } catch (err) {
    if (!isAccountsUnavailable(err)) throw err;
    return { ok: false, reason: 'unavailable', account, error: (err as Error).message };
  }
  if (verdict.delayMs) await new Promise((r) => setTimeout(r, verdict.delayMs));
  if (!ok) {
    await bf.failure(ip, key);
    return { ok: false, reason: 'failed', account, ...(verdict.blocked ? { blocked: verdict.blocked } : {}), ...(proxy ? { authz: true as const } : {}) };
  }
  await bf.success(ip, account);
  return { ok: true, account };
}

/** A malformed SASL exchange: counted against the source like a wrong password. */
export function malformedLogin(guard: Pick<LoginGuard, 'bruteForce'>, ip: string): Promise<void> {
  return guard.bruteForce.failure(ip, '(malformed)');
}
