// The one login of SMTP AUTH, IMAP and POP3 (login.ts): SASL decoding, PLAIN's message, and the
// rules of the password check behind the brute-force defence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BruteForce, type BruteForceConfig } from './brute-force.js';
import { AccountError } from './accounts.js';
import { MemoryStore } from '../store/memory-store.js';
import { checkLogin, decodeSaslResponse, parsePlain } from './login.js';

const CONFIG: BruteForceConfig = {
  window: 3_600_000, block_time: 900_000, pair_limit: 3, ip_limit: 1000, net_limit: 10_000,
  base_delay: 0, max_delay: 0, spray_accounts: 10, spray_sources: 10, known_network_ttl: 30 * 86_400_000,
};

/** Accounts with one user; records every password it was asked to check. */
function accounts(down = false) {
  const checked: string[] = [];
  return {
    checked,
    async authenticate(user: string, password: string) {
      checked.push(password);
      if (down) throw new AccountError('UNAVAILABLE', 'redis down');
      return user.trim().toLowerCase() === 'alice@example.test' && password === 'right';
    },
  };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

test('decodeSaslResponse: canonical base64 only; "*" cancels, "=" is empty; bounded', () => {
  assert.equal(decodeSaslResponse(b64('\0alice\0pw')), '\0alice\0pw');
  assert.equal(decodeSaslResponse(' ' + b64('x') + ' '), 'x');
  assert.equal(decodeSaslResponse('*'), null);
  assert.equal(decodeSaslResponse('='), '');
  for (const bad of ['', 'abc', 'ab=c', 'YQ', '!!!!', 'YQ==YQ==']) assert.equal(decodeSaslResponse(bad), undefined, bad);
  assert.equal(decodeSaslResponse('A'.repeat(12_004)), undefined, 'too long');
});

test('parsePlain: authzid NUL authcid NUL passwd, nothing else', () => {
  assert.deepEqual(parsePlain('\0alice\0pw'), { authz: '', user: 'alice', pass: 'pw' });
  assert.deepEqual(parsePlain('admin\0alice\0p\u00e4ss'), { authz: 'admin', user: 'alice', pass: 'p\u00e4ss' });
  assert.equal(parsePlain('alice\0pw'), undefined);
  assert.equal(parsePlain('a\0b\0c\0d'), undefined);
});

test('checkLogin: the right password; a wrong one counted; a blocked pair refused without its password checked', async () => {
  const store = new MemoryStore();
  const guard = { bruteForce: new BruteForce(store, CONFIG), accounts: accounts() };
  assert.deepEqual(await checkLogin(guard, '192.0.2.1', ' Alice@Example.test ', 'right'), { ok: true, account: 'alice@example.test' });
  for (let i = 0; i < 3; i++) assert.deepEqual(await checkLogin(guard, '192.0.2.1', 'alice@example.test', `wrong${i}`), { ok: false, reason: 'failed', account: 'alice@example.test' });
  guard.accounts.checked.length = 0;
  const blocked = await checkLogin(guard, '192.0.2.1', 'alice@example.test', 'right');
  assert.deepEqual(blocked, { ok: false, reason: 'failed', account: 'alice@example.test', blocked: 'pair' });
  assert.deepEqual(guard.accounts.checked, [], 'a blocked source\'s password is not checked');
  assert.equal((await checkLogin(guard, '192.0.2.2', 'alice@example.test', 'right')).ok, true, 'the account is not locked for others');
});

test('checkLogin: a proxy authorisation identity is a failure counted against the pair; over-long input is not checked', async () => {
  const store = new MemoryStore();
  const guard = { bruteForce: new BruteForce(store, CONFIG), accounts: accounts() };
  assert.deepEqual(await checkLogin(guard, '192.0.2.3', 'alice@example.test', 'right', 'bob@example.test'), { ok: false, reason: 'failed', account: 'alice@example.test', authz: true });
  assert.equal((await checkLogin(guard, '192.0.2.3', 'alice@example.test', 'right', 'ALICE@example.test')).ok, true, 'the same identity is no proxy');
  assert.equal(await store.get('bf:f:pair:192.0.2.3|alice@example.test'), 0, 'the success cleared the pair');
  guard.accounts.checked.length = 0;
  assert.equal((await checkLogin(guard, '192.0.2.3', 'alice@example.test', 'x'.repeat(1025))).ok, false);
  assert.equal((await checkLogin(guard, '192.0.2.3', `${'a'.repeat(321)}@example.test`, 'right')).ok, false);
  assert.equal((await checkLogin(guard, '192.0.2.3', '  ', 'right')).ok, false);
  assert.deepEqual(guard.accounts.checked, [], 'nothing over-long or empty reaches the password hash');
  assert.equal(await store.get('bf:f:ip:192.0.2.3'), 4, 'the proxy attempt and these three, each counted against the source');
});

test('checkLogin: accounts that cannot be read are "unavailable", not a counted failure', async () => {
  const store = new MemoryStore();
  const guard = { bruteForce: new BruteForce(store, CONFIG), accounts: accounts(true) };
  const r = await checkLogin(guard, '192.0.2.4', 'alice@example.test', 'right');
  assert.deepEqual(r, { ok: false, reason: 'unavailable', account: 'alice@example.test', error: 'redis down' });
  assert.equal(await store.get('bf:f:pair:192.0.2.4|alice@example.test'), 0);
});
