import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Maildrop, SizeCache, uidlFor } from './maildrop.js';
import { pop3ConfigSchema } from './config.js';

function tmpMaildir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pop3-maildrop-'));
  for (const sub of ['new', 'cur', 'tmp']) fs.mkdirSync(path.join(dir, sub));
  return dir;
}

test('uidlFor: the base name when RFC 1939 allows it, a stable hash otherwise', () => {
  assert.equal(uidlFor('1700000000.M1P2Q3.host,S=10'), '1700000000.M1P2Q3.host,S=10');
  const long = `1700000000.M123456P123456Q12345.${'a'.repeat(40)}.example.org,S=123456`;
  assert.match(uidlFor(long), /^h[0-9a-f]{40}$/);
  assert.equal(uidlFor(long), uidlFor(long));
  assert.notEqual(uidlFor(long), uidlFor(`${long}7`));
  assert.match(uidlFor('with space'), /^h[0-9a-f]{40}$/);
  assert.match(uidlFor('caf\u00e9'), /^h[0-9a-f]{40}$/);
});

test('a mailbox that does not exist yet is an empty maildrop', async () => {
  const drop = await Maildrop.open(path.join(os.tmpdir(), 'no-such-maildir-' + process.pid), new SizeCache());
  assert.deepEqual(drop.stat(), { count: 0, size: 0 });
});

test('only regular files count: dot-files, directories and symlinks (to another user\'s mail) are skipped', async () => {
  const dir = tmpMaildir();
  const victim = tmpMaildir();
  try {
    fs.writeFileSync(path.join(victim, 'cur', '1.M1P1.h,S=7:2,'), 'secret\n');
    fs.symlinkSync(path.join(victim, 'cur', '1.M1P1.h,S=7:2,'), path.join(dir, 'cur', '2.M1P1.h:2,'));
    fs.symlinkSync(path.join(victim, 'cur', '1.M1P1.h,S=7:2,'), path.join(dir, 'new', '3.M1P1.h'));
    fs.writeFileSync(path.join(dir, 'cur', '.hidden'), 'x\n');
    fs.mkdirSync(path.join(dir, 'cur', '4.M1P1.h:2,'));
    fs.writeFileSync(path.join(dir, 'cur', '5.M1P1.h:2,S'), 'ok\n');
    const drop = await Maildrop.open(dir, new SizeCache());
    assert.deepEqual(drop.messages.map((m) => m.base), ['5.M1P1.h']);
    assert.equal(drop.messages[0]!.size, 4);
    assert.ok(fs.lstatSync(path.join(dir, 'new', '3.M1P1.h')).isSymbolicLink(), 'a symlink in new/ is not moved either');
  } finally {
    fs.rmSync(dir, { recursive: true });
    fs.rmSync(victim, { recursive: true });
  }
});

test('order by delivery time; new/ moves to cur/; W= is trusted for the size; sizes are cached', async () => {
  const dir = tmpMaildir();
  try {
    fs.writeFileSync(path.join(dir, 'cur', '1700000002.M5P1Q1.h,S=3,W=99:2,S'), 'ab\n');
    fs.writeFileSync(path.join(dir, 'new', '1700000001.M9P1Q1.h,S=4'), 'a\nb\n');
    fs.writeFileSync(path.join(dir, 'new', '1700000001.M10P1Q1.h,S=2'), 'c\n');
    const sizes = new SizeCache();
    const drop = await Maildrop.open(dir, sizes);
    assert.deepEqual(drop.messages.map((m) => [m.number, m.base, m.size]), [
      [1, '1700000001.M9P1Q1.h,S=4', 6],
      [2, '1700000001.M10P1Q1.h,S=2', 3],
      [3, '1700000002.M5P1Q1.h,S=3,W=99', 99],
    ]);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'new')), []);
    assert.ok(fs.existsSync(path.join(dir, 'cur', '1700000001.M9P1Q1.h,S=4:2,')));
    assert.equal(sizes.get(dir, '1700000001.M9P1Q1.h,S=4'), 6);
    // Cached: a second snapshot does not read the file again (the cached value wins).
    sizes.set(dir, '1700000001.M9P1Q1.h,S=4', 1234);
    assert.equal((await Maildrop.open(dir, sizes)).messages[0]!.size, 1234);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('the size cache is bounded', () => {
  const c = new SizeCache(3);
  for (let i = 0; i < 10; i++) c.set('d', String(i), i);
  assert.equal(c.get('d', '0'), undefined);
  assert.equal(c.get('d', '9'), 9);
  assert.equal(c.get('d', '7'), 7);
});

test('the config section: defaults, and faults named by key', () => {
  const c = pop3ConfigSchema.parse({});
  assert.equal(c.enabled, true);
  assert.deepEqual(c.listeners.map((l) => `${l.name} ${l.address}:${l.port} ${l.tls}`), ['pop3 127.0.0.1:1100 starttls', 'pop3s 127.0.0.1:9950 implicit']);
  assert.equal(c.idle_timeout, 600_000);
  assert.equal(c.max_connections_per_ip, 20);
  assert.equal(c.max_connections_per_user, 10);
  const bad = pop3ConfigSchema.safeParse({ listeners: [{ name: 'a', port: 1, tls: 'none' }], idle_timeout: 'soon', bogus: 1 });
  assert.equal(bad.success, false);
  const paths = bad.error!.issues.map((i) => i.path.join('.'));
  assert.ok(paths.includes('listeners.0.tls'), paths.join(' '));
  assert.ok(paths.includes('idle_timeout'), paths.join(' '));
  const dup = pop3ConfigSchema.safeParse({ listeners: [{ name: 'a', port: 1, tls: 'implicit' }, { name: 'a', port: 2, tls: 'starttls' }] });
  assert.match(dup.error!.issues[0]!.message, /used twice/);
});
