import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SignedTokens, tokenKeyFile, type TokenRefusal } from './signed-token.js';

class Refused extends Error {
  constructor(readonly code: TokenRefusal, message: string) {
    super(message);
  }
}
const KEY = Buffer.alloc(32, 9);
const refused = (code: TokenRefusal, text?: RegExp) => (e: unknown) => e instanceof Refused && e.code === code && (!text || text.test(e.message));

describe('signed tokens', () => {
  it('round-trips the caller\'s fields between the token id and the expiry; the format is the one issued before', () => {
    const now = 1_700_000_000_000;
    const tokens = new SignedTokens({ key: KEY, now: () => now, refuse: (c, m) => new Refused(c, m) });
    const t = tokens.sign({ l: 'team@example.org', r: 'bob@example.net', a: 'subscribe' }, now + 60_000);
    assert.match(t, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const v = tokens.verify(t);
    assert.deepEqual(v.fields, { l: 'team@example.org', r: 'bob@example.net', a: 'subscribe' });
    assert.equal(v.expiresAt, now + 60_000);
    assert.match(v.tokenId, /^[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(Object.keys(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()) as object), ['t', 'l', 'r', 'a', 'e']);
    // A link made by the earlier, separate implementations (same construction) still verifies.
    const body = Buffer.from(JSON.stringify({ t: 'abc', i: 'Q1', r: 'u@example.test', a: 'release', e: now + 1 })).toString('base64url');
    const old = `${body}.${crypto.createHmac('sha256', KEY).update(body).digest('base64url')}`;
    assert.deepEqual(tokens.verify(old), { tokenId: 'abc', expiresAt: now + 1, fields: { i: 'Q1', r: 'u@example.test', a: 'release' } });
  });

  it('expires at its time, or never (e=0)', () => {
    let now = 1_000_000;
    const tokens = new SignedTokens({ key: KEY, now: () => now, refuse: (c, m) => new Refused(c, m) });
    const t = tokens.sign({ a: 'x' }, now + 1000);
    const forever = tokens.sign({ a: 'leave' }, null);
    now += 999;
    assert.equal(tokens.verify(t).expiresAt, 1_001_000);
    now += 1;
    assert.throws(() => tokens.verify(t), refused('EXPIRED', /expired at 1970-01-01T00:16:41\.000Z/));
    now += 10 * 365 * 86_400_000;
    assert.equal(tokens.verify(forever).expiresAt, null);
    assert.throws(() => tokens.sign({}, 0), /expires at a time after 1970, or never/);
    assert.throws(() => tokens.sign({}, Number.NaN), /expires at a time after 1970, or never/);
  });

  it('refuses altered, foreign and malformed tokens with the caller\'s error, and every other spelling of the last character', () => {
    const tokens = new SignedTokens({ key: KEY, refuse: (c, m) => new Refused(c, m) });
    const t = tokens.sign({ r: 'alice@example.org' }, Date.now() + 60_000);
    const [body, sig] = t.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()) as object, r: 'mallory@example.org' })).toString('base64url');
    assert.throws(() => tokens.verify(`${forged}.${sig}`), refused('ALTERED', /altered or is not ours/));
    const other = new SignedTokens({ key: Buffer.alloc(32, 1), refuse: (c, m) => new Refused(c, m) });
    assert.throws(() => tokens.verify(other.sign({ r: 'alice@example.org' }, Date.now() + 60_000)), refused('ALTERED'));
    for (const bad of ['', 'x', body, `${body}.`, `.${sig}`, `${t}.x`, 'x'.repeat(5000), `${body}.${sig}${sig}`]) {
      assert.throws(() => tokens.verify(bad), refused('ALTERED'), bad.slice(0, 40));
    }
    assert.throws(() => tokens.verify(undefined as unknown as string), refused('ALTERED'));
    // Signed, but not a claim: refused all the same.
    for (const json of ['[1]', 'null', '"s"', '{"t":"a","e":"soon"}', 'not json']) {
      const b = Buffer.from(json).toString('base64url');
      assert.throws(() => tokens.verify(`${b}.${crypto.createHmac('sha256', KEY).update(b).digest('base64url')}`), refused('ALTERED'), json);
    }
    // base64url's last character carries spare bits: the spellings that decode to the same bytes
    // are other links, and refused (a comparison of decoded bytes accepted them once).
    for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
      if (c === sig.at(-1)) continue;
      assert.throws(() => tokens.verify(`${body}.${sig.slice(0, -1)}${c}`), refused('ALTERED'), `last character ${c}`);
    }
  });

  it('makes its key once, mode 0600, and names a broken key file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'signed-token-'));
    try {
      const file = path.join(dir, 'sub', 'x.key');
      const a = tokenKeyFile(file, 'test key');
      assert.equal(a.length, 32);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.ok(tokenKeyFile(file, 'test key').equals(a), 'read again, not made anew');
      fs.writeFileSync(file, 'nonsense\n');
      assert.throws(() => tokenKeyFile(file, 'test key'), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a test key \\(64 hex digits\\); remove it`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
