import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { MaildirDelivery, MaildirDeliveryError, isTemporaryFsError } from './maildir.js';
import type { Content } from './types.js';

function tmpRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-maildir-'));
}

function contentOf(buf: Buffer, chunk = 1 << 16): Content {
  return {
    size: buf.length,
    stream: () => {
      const parts: Buffer[] = [];
      for (let off = 0; off < buf.length; off += chunk) parts.push(buf.subarray(off, off + chunk));
      return Readable.from(parts);
    },
  };
}

const message = (n: number) =>
  Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: test ${n}\r\n\r\nbody ${n}\r\n.\r\n..x\r\n`);

const NAME = /^(\d+)\.M(\d+)P(\d+)Q(\d+)\.(.+),S=(\d+)$/;

test('a message lands in new/ with its exact bytes, a Dovecot-style name and nothing left in tmp/', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'mail', 'example.org', 'alice');
  const md = new MaildirDelivery({ fsync: true, hostname: 'mx1.example.org' });
  const body = Buffer.concat([message(1), Buffer.from([0xc3, 0xa9, 0x0d, 0x0a])]);
  const name = await md.deliver(mbox, 'INBOX', contentOf(body, 7));

  const m = NAME.exec(name);
  assert.ok(m, `unexpected name ${name}`);
  assert.equal(m[3], String(process.pid));
  assert.equal(m[5], 'mx1.example.org');
  assert.equal(Number(m[6]), body.length);
  assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 5);
  assert.ok(Number(m[2]) < 1_000_000);

  assert.deepEqual(fs.readFileSync(path.join(mbox, 'new', name)), body);
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'cur')), []);
  assert.equal(fs.statSync(path.join(mbox, 'new', name)).size, body.length);
  for (const d of [mbox, path.join(mbox, 'new'), path.join(mbox, 'tmp'), path.join(mbox, 'cur')]) {
    assert.equal(fs.statSync(d).mode & 0o777, 0o700 & ~process.umask(), d);
  }
  assert.equal(fs.existsSync(path.join(mbox, '.Junk')), false, 'INBOX delivery must not create Junk');
});

test('hostname "/" and ":" are escaped as Dovecot does', async () => {
  const root = tmpRoot();
  const md = new MaildirDelivery({ fsync: false, hostname: 'odd/host:name' });
  const name = await md.deliver(path.join(root, 'bob'), 'INBOX', contentOf(message(2)));
  assert.match(name, /\.odd\\057host\\072name,S=\d+$/);
  assert.ok(fs.existsSync(path.join(root, 'bob', 'new', name)));
});

test('Junk delivery creates .Junk with tmp/new/cur, maildirfolder, and subscribes it once', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'carol');
  const md = new MaildirDelivery({ fsync: true, hostname: 'h' });
  const first = await md.deliver(mbox, 'Junk', contentOf(message(3)));
  const junk = path.join(mbox, '.Junk');
  for (const sub of ['tmp', 'new', 'cur']) assert.ok(fs.statSync(path.join(junk, sub)).isDirectory(), sub);
  assert.equal(fs.readFileSync(path.join(junk, 'maildirfolder'), 'utf8'), '');
  assert.deepEqual(fs.readFileSync(path.join(junk, 'new', first)), message(3));
  // INBOX exists too, so Dovecot sees a valid Maildir
  for (const sub of ['tmp', 'new', 'cur']) assert.ok(fs.statSync(path.join(mbox, sub)).isDirectory(), sub);
  assert.equal(fs.readFileSync(path.join(mbox, 'subscriptions'), 'utf8'), 'Junk\n');

  // a second instance (a restart) must not subscribe twice
  const md2 = new MaildirDelivery({ fsync: true, hostname: 'h' });
  await md2.deliver(mbox, 'Junk', contentOf(message(4)));
  assert.equal(fs.readFileSync(path.join(mbox, 'subscriptions'), 'utf8'), 'Junk\n');
  assert.equal(fs.readdirSync(path.join(junk, 'new')).length, 2);
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'new')), []);
});

test('an existing subscriptions file keeps its lines and gains Junk', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'dave');
  fs.mkdirSync(mbox, { recursive: true });
  fs.writeFileSync(path.join(mbox, 'subscriptions'), 'V\t2\n\nSent\nTrash');
  const md = new MaildirDelivery({ fsync: false, hostname: 'h' });
  await md.deliver(mbox, 'Junk', contentOf(message(5)));
  assert.equal(fs.readFileSync(path.join(mbox, 'subscriptions'), 'utf8'), 'V\t2\n\nSent\nTrash\nJunk\n');
});

test('a content stream that fails leaves nothing in tmp/ or new/ and is a temporary error', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'erin');
  const md = new MaildirDelivery({ fsync: true, hostname: 'h' });
  const failing: Content = {
    size: 100_000,
    stream: () =>
      Readable.from((async function* () {
        yield Buffer.alloc(40_000, 0x61);
        yield Buffer.alloc(40_000, 0x62);
        throw Object.assign(new Error('spool read failed'), { code: 'EIO' });
      })()),
  };
  await assert.rejects(md.deliver(mbox, 'INBOX', failing), (err: unknown) => {
    assert.ok(err instanceof MaildirDeliveryError);
    assert.equal(err.temporary, true);
    assert.equal(err.code, 'EIO');
    assert.match(err.message, /spool read failed/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'new')), []);

  // the same instance still delivers afterwards
  const ok = await md.deliver(mbox, 'INBOX', contentOf(message(6)));
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'new')), [ok]);
});

test('a stream shorter than the announced size is refused and removed', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'frank');
  const md = new MaildirDelivery({ fsync: false, hostname: 'h' });
  const body = message(7);
  await assert.rejects(md.deliver(mbox, 'INBOX', { size: body.length + 10, stream: contentOf(body).stream }),
    (err: unknown) => err instanceof MaildirDeliveryError && err.temporary === false && /bytes/.test(err.message));
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'new')), []);
});

test('a mailbox path under a regular file is a permanent error (ENOTDIR)', async () => {
  const root = tmpRoot();
  fs.writeFileSync(path.join(root, 'plainfile'), 'x');
  const md = new MaildirDelivery({ fsync: true, hostname: 'h' });
  await assert.rejects(md.deliver(path.join(root, 'plainfile', 'alice'), 'INBOX', contentOf(message(8))),
    (err: unknown) => err instanceof MaildirDeliveryError && err.temporary === false && err.code === 'ENOTDIR');
});

test('a folder removed behind the cache is created again', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'gina');
  const md = new MaildirDelivery({ fsync: true, hostname: 'h' });
  await md.deliver(mbox, 'INBOX', contentOf(message(9)));
  fs.rmSync(mbox, { recursive: true });
  const name = await md.deliver(mbox, 'INBOX', contentOf(message(10)));
  assert.deepEqual(fs.readFileSync(path.join(mbox, 'new', name)), message(10));
});

test('1000 concurrent deliveries get 1000 distinct files with the right contents', async () => {
  const root = tmpRoot();
  const mbox = path.join(root, 'henry');
  const md = new MaildirDelivery({ fsync: true, hostname: 'h' });
  const names = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => md.deliver(mbox, i % 3 === 0 ? 'Junk' : 'INBOX', contentOf(message(i)))),
  );
  assert.equal(new Set(names).size, 1000);
  const inbox = new Set(fs.readdirSync(path.join(mbox, 'new')));
  const junk = new Set(fs.readdirSync(path.join(mbox, '.Junk', 'new')));
  assert.equal(inbox.size + junk.size, 1000);
  assert.equal(junk.size, 334);
  names.forEach((name, i) => {
    const dir = i % 3 === 0 ? path.join(mbox, '.Junk', 'new') : path.join(mbox, 'new');
    assert.deepEqual(fs.readFileSync(path.join(dir, name)), message(i));
  });
  assert.deepEqual(fs.readdirSync(path.join(mbox, 'tmp')), []);
  assert.deepEqual(fs.readdirSync(path.join(mbox, '.Junk', 'tmp')), []);
  assert.equal(fs.readFileSync(path.join(mbox, 'subscriptions'), 'utf8'), 'Junk\n');
});

test('error classification: quota and I/O are temporary, bad paths are not', () => {
  for (const code of ['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'EACCES', undefined]) assert.equal(isTemporaryFsError(code), true, String(code));
  for (const code of ['ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP']) assert.equal(isTemporaryFsError(code), false, code);
});
