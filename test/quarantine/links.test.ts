// Signed digest links (src/quarantine/links.ts) and what following one does
// (src/pipeline/quarantine-link.ts): verified, spent once, refused with distinct errors when
// altered, expired or reused; release goes to that user's INBOX only, allow_sender writes that
// user's allow list.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createLinks, LinkError } from '../../src/quarantine/links.js';
import { Quarantine, QuarantineError } from '../../src/quarantine/quarantine.js';
import { quarantineConfigSchema } from '../../src/quarantine/config.js';
import { createReleaser } from '../../src/quarantine/release.js';
import { followLink } from '../../src/pipeline/quarantine-link.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { AccountStore, accountsFile, mailboxPath } from '../../src/auth/accounts.js';
import { MaildirDelivery } from '../../src/delivery/maildir.js';
import { silentLogger } from '../../src/log.js';
import { USERS } from '../helpers/fixtures.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-qlinks-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let n = 0;
const freshDir = () => fs.mkdtempSync(path.join(tmpRoot, `d${++n}-`));

const HOUR = 3_600_000;
const refused = (code: string) => (e: unknown) => e instanceof LinkError && e.code === code;

describe('digest links', () => {
  it('a key made once under the data directory, mode 0600, the same for every process', () => {
    const dir = freshDir();
    const store = SqliteStore.open(path.join(dir, 'state.db'), { purgeIntervalMs: 0 });
    const a = createLinks({ dataDir: dir, store });
    const b = createLinks({ dataDir: dir, store });
    const key = path.join(dir, 'quarantine', 'links.key');
    assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    const token = a.signLink({ id: 'AAAAAAAAAAAAAAAA', recipient: 'u@example.test', action: 'release', expiresAt: Date.now() + HOUR });
    return b.verifyLink(token).then((c) => {
      assert.equal(c.recipient, 'u@example.test');
      return store.close();
    });
  });

  it('verified and spent once; reused, altered, foreign and expired tokens refused, each with its own error', async () => {
    const dir = freshDir();
    const store = SqliteStore.open(path.join(dir, 'state.db'), { purgeIntervalMs: 0 });
    let now = Date.UTC(2026, 5, 1);
    const links = createLinks({ dataDir: dir, store, now: () => now });
    const token = links.signLink({ id: 'BBBBBBBBBBBBBBBB', recipient: 'Alice@Example.test', action: 'allow_sender', expiresAt: now + 7 * 24 * HOUR });
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'URL-safe');
    const claim = await links.verifyLink(token);
    assert.deepEqual({ ...claim, tokenId: undefined }, { id: 'BBBBBBBBBBBBBBBB', recipient: 'alice@example.test', action: 'allow_sender', expiresAt: now + 7 * 24 * HOUR, tokenId: undefined });
    assert.deepEqual(await links.consumeLink(token), claim);
    await assert.rejects(links.consumeLink(token), refused('REUSED'));
    await assert.rejects(links.verifyLink(token), refused('REUSED'));

    // Two clicks at once: one wins.
    const twice = links.signLink({ id: 'BBBBBBBBBBBBBBBB', recipient: 'alice@example.test', action: 'release', expiresAt: now + HOUR });
    const results = await Promise.allSettled([links.consumeLink(twice), links.consumeLink(twice)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);

    const fresh = links.signLink({ id: 'CCCCCCCCCCCCCCCC', recipient: 'alice@example.test', action: 'release', expiresAt: now + HOUR });
    const [body, sig] = fresh.split('.') as [string, string];
    // Another user's id or another action in the claim, with the old signature.
    const claimText = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Record<string, unknown>;
    for (const change of [{ r: 'mallory@example.test' }, { i: 'DDDDDDDDDDDDDDDD' }, { a: 'allow_sender' }, { e: now + 1000 * HOUR }]) {
      const forged = `${Buffer.from(JSON.stringify({ ...claimText, ...change })).toString('base64url')}.${sig}`;
      await assert.rejects(links.consumeLink(forged), refused('ALTERED'), JSON.stringify(change));
    }
    const flip = (s: string, k: number) => s.slice(0, k) + (s[k] === 'A' ? 'B' : 'A') + s.slice(k + 1);
    for (const bad of [flip(fresh, 3), flip(fresh, fresh.length - 2), `${body}.`, body, `${fresh}.x`, '', 'x'.repeat(5000), `${body}.${sig}${sig}`]) {
      await assert.rejects(links.consumeLink(bad), refused('ALTERED'), bad.slice(0, 40));
    }
    // base64url's last character has spare bits: every other spelling of it, even one that decodes
    // to the same bytes, is a different link and refused.
    for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
      if (c === sig.at(-1)) continue;
      await assert.rejects(links.consumeLink(`${body}.${sig.slice(0, -1)}${c}`), refused('ALTERED'), `last character ${c}`);
    }
    const other = createLinks({ dataDir: freshDir(), store, now: () => now });
    await assert.rejects(links.consumeLink(other.signLink({ id: 'CCCCCCCCCCCCCCCC', recipient: 'alice@example.test', action: 'release', expiresAt: now + HOUR })), refused('ALTERED'), 'signed with another key');

    now += HOUR;
    await assert.rejects(links.consumeLink(fresh), refused('EXPIRED'));
    // The refusals did not spend it: within its time it would have worked.
    now -= 1;
    assert.equal((await links.consumeLink(fresh)).id, 'CCCCCCCCCCCCCCCC');
    await store.close();
  });

  it('followLink: release goes to that user\'s INBOX only, byte-identical; allow_sender adds the sender to that user\'s allow list', async () => {
    const dir = freshDir();
    const store = SqliteStore.open(path.join(dir, 'state.db'), { purgeIntervalMs: 0 });
    const accounts = AccountStore.open(accountsFile(dir));
    await accounts.addUser(USERS.alice.address, USERS.alice.password);
    await accounts.addUser(USERS.bob.address, USERS.bob.password);
    const maildir = new MaildirDelivery({ fsync: false, hostname: 'mx.example.test' });
    const quarantine = Quarantine.open({
      dataDir: dir, config: quarantineConfigSchema.parse({}), logger: silentLogger(), fsync: false, expireIntervalMs: 0,
      releaser: createReleaser({ maildir, mailboxDir: (a) => mailboxPath(dir, a), isLocal: (a) => accounts.hasUser(a), commit: async () => assert.fail('nothing relayed'), newId: () => 'Q1' }),
    });
    const links = createLinks({ dataDir: dir, store });
    const raw = Buffer.from('From: news@shop.example\r\nSubject: offer\r\n\r\nbuy\r\n');
    const id = await quarantine.add({ reason: 'policy_band', sender: 'news@shop.example', recipients: [USERS.alice.address, USERS.bob.address] }, raw);
    const exp = Date.now() + HOUR;

    const rel = await followLink(links.signLink({ id, recipient: USERS.alice.address, action: 'release', expiresAt: exp }), { links, quarantine, accounts });
    assert.equal(rel.action, 'release');
    const files = (a: string) => { const d = path.join(mailboxPath(dir, a), 'new'); return fs.existsSync(d) ? fs.readdirSync(d).map((f) => fs.readFileSync(path.join(d, f))) : []; };
    assert.equal(files(USERS.alice.address).length, 1);
    assert.ok(files(USERS.alice.address)[0]!.equals(raw));
    assert.equal(files(USERS.bob.address).length, 0, 'only that user');
    assert.deepEqual(Object.fromEntries(quarantine.get(id)!.recipients.map((r) => [r.address, r.state])), { [USERS.alice.address]: 'released', [USERS.bob.address]: 'held' });
    assert.equal(quarantine.get(id)!.recipients.find((r) => r.address === USERS.alice.address)!.by, `link:${USERS.alice.address}`);

    const allow = await followLink(links.signLink({ id, recipient: USERS.bob.address, action: 'allow_sender', expiresAt: exp }), { links, quarantine, accounts });
    assert.deepEqual(allow.action === 'allow_sender' && allow.sender, 'news@shop.example');
    assert.deepEqual((JSON.parse(accounts.getSettingsJson(USERS.bob.address)!) as { allow: string[] }).allow, ['news@shop.example']);
    assert.equal(accounts.getSettingsJson(USERS.alice.address), undefined, 'nobody else\'s list');

    // A link for a message that is not that user's: spent, and nothing done.
    const other = await quarantine.add({ reason: 'policy_band', sender: 'x@y.example', recipients: [USERS.bob.address] }, raw);
    await assert.rejects(followLink(links.signLink({ id: other, recipient: USERS.alice.address, action: 'release', expiresAt: exp }), { links, quarantine, accounts }), (e) => e instanceof QuarantineError && e.code === 'NOT_FOUND');
    assert.equal(files(USERS.alice.address).length, 1);
    quarantine.close();
    accounts.close();
    await store.close();
  });
});
