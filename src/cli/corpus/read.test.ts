import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readMessages, stripEnvelope, type CorpusNotice } from './read.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'corpus-'));

async function collect(input: string, maxBytes?: number) {
  const skipped: CorpusNotice[] = [];
  const out: { name: string; text: string }[] = [];
  for await (const m of readMessages(input, { maxBytes, onSkip: (n) => skipped.push(n) })) out.push({ name: m.name, text: m.raw.toString('latin1') });
  return { out, skipped };
}

const MBOX = [
  'From alice@example.org Thu Aug 22 13:17:22 2002',
  'Subject: one',
  '',
  'body one',
  '>From the start, quoted by mboxo',
  '>>From quoted twice by mboxrd',
  'From here on an unquoted line that is not a separator (no blank line before)',
  '',
  'From bob@example.org  Fri Aug 23 01:02:03 2002',
  'Subject: two',
  '',
  'body two',
  '',
  'From MAILER-DAEMON Sat Aug 24 10:00:00 2002',
  'Subject: three (big)',
  '',
  'x'.repeat(5000),
  '',
  'From carol@example.org Sun Aug 25 10:00:00 +0000 2002',
  'Subject: four',
  '',
  'last',
  '',
].join('\n');

test('mbox: split on From lines after a blank line, >From unquoted one level, oversized skipped', async () => {
  const dir = tmp();
  const file = path.join(dir, 'inbox');
  fs.writeFileSync(file, MBOX);
  const { out, skipped } = await collect(file, 1000);
  assert.deepEqual(out.map((m) => m.name), [`${file}#1`, `${file}#2`, `${file}#4`]);
  assert.equal(out[0]!.text, 'Subject: one\n\nbody one\nFrom the start, quoted by mboxo\n>From quoted twice by mboxrd\nFrom here on an unquoted line that is not a separator (no blank line before)\n');
  assert.equal(out[1]!.text, 'Subject: two\n\nbody two\n');
  assert.equal(out[2]!.text, 'Subject: four\n\nlast\n');
  assert.deepEqual(skipped.map((s) => s.name), [`${file}#3`]);
  assert.match(skipped[0]!.reason, /1000-byte limit/);
  // The same mbox in chunks of any size splits the same (lines across chunk boundaries).
  const gz = path.join(dir, 'inbox.mbox.gz');
  fs.writeFileSync(gz, zlib.gzipSync(MBOX));
  const again = await collect(gz, 1000);
  assert.deepEqual(again.out.map((m) => m.text), out.map((m) => m.text));
});

test('directory: recursive, byte-sorted, dotfiles skipped, envelope line stripped from .eml', async () => {
  const dir = tmp();
  fs.mkdirSync(path.join(dir, 'b'));
  fs.mkdirSync(path.join(dir, '.hidden'));
  fs.writeFileSync(path.join(dir, 'b', '2.eml'), 'From x@example.org Thu Aug 22 13:17:22 2002\nSubject: b2\n\nFrom me, with love\n');
  fs.writeFileSync(path.join(dir, 'B.eml'), 'Subject: B\n\nx\n');
  fs.writeFileSync(path.join(dir, 'a.eml'), 'Subject: a\r\n\r\nx\r\n');
  fs.writeFileSync(path.join(dir, '.DS_Store'), 'junk');
  fs.writeFileSync(path.join(dir, '.hidden', 'c.eml'), 'Subject: hidden\n\nx\n');
  fs.writeFileSync(path.join(dir, 'huge.eml'), `Subject: huge\n\n${'y'.repeat(3000)}`);
  fs.writeFileSync(path.join(dir, 'dovecot-uidlist'), '3 V1700000000 N5 G0123\n1 :1700000000.M1P1.host\n');
  fs.writeFileSync(path.join(dir, 'dovecot.index'), Buffer.from([7, 3, 0, 0, 1, 2]));
  const { out, skipped } = await collect(dir, 2000);
  assert.deepEqual(out.map((m) => path.relative(dir, m.name)), ['B.eml', 'a.eml', path.join('b', '2.eml')]);
  // An .eml keeps a body line starting "From " (it is not an mbox), and loses only its envelope.
  assert.equal(out[2]!.text, 'Subject: b2\n\nFrom me, with love\n');
  assert.equal(out[1]!.text, 'Subject: a\r\n\r\nx\r\n');
  assert.deepEqual(skipped.map((s) => `${path.basename(s.name)}: ${s.reason}`), [
    'dovecot-uidlist: not a message (no header field at the start)',
    'dovecot.index: not a message (no header field at the start)',
    `huge.eml: ${3000 + 15} bytes, over the 2000-byte limit`,
  ]);
});

test('tarballs written by GNU tar (.tar, .tar.gz, .tgz) stream through; broken ones are notices', async () => {
  const dir = tmp();
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'spam'), { recursive: true });
  fs.mkdirSync(path.join(src, 'ham'), { recursive: true });
  for (let i = 1; i <= 3; i++) fs.writeFileSync(path.join(src, 'spam', `${i}.eml`), `From s@example.org Thu Aug 22 13:17:22 2002\nSubject: spam ${i}\n\nbuy\n`);
  fs.writeFileSync(path.join(src, 'ham', `${'long-name-'.repeat(12)}.eml`), 'Subject: ham with a long name\n\nhi\n'); // > 100 chars: a GNU long name
  fs.writeFileSync(path.join(src, 'ham', 'big.eml'), `Subject: big\n\n${'z'.repeat(5000)}`);
  fs.writeFileSync(path.join(src, 'index.tsv'), 'file\tlabel\n');
  const tgz = path.join(dir, 'c.tgz');
  const tar = path.join(dir, 'c.tar');
  const targz = path.join(dir, 'c.tar.gz');
  execFileSync('tar', ['-czf', tgz, '-C', src, '.']);
  execFileSync('tar', ['-cf', tar, '-C', src, '.']);
  fs.copyFileSync(tgz, targz);
  for (const file of [tgz, tar, targz]) {
    const { out, skipped } = await collect(file, 4096);
    const names = out.map((m) => m.name.slice(file.length + 1)).sort();
    assert.deepEqual(names, [`ham/${'long-name-'.repeat(12)}.eml`, 'spam/1.eml', 'spam/2.eml', 'spam/3.eml'], file);
    assert.ok(out.every((m) => m.text.startsWith('Subject: ')), 'envelope lines stripped');
    assert.deepEqual(skipped.map((s) => s.name.slice(file.length + 1)), ['ham/big.eml']);
  }
  // Truncated gzip and a corrupt tar header: reported, never thrown.
  const cut = path.join(dir, 'cut.tgz');
  fs.writeFileSync(cut, fs.readFileSync(tgz).subarray(0, 200));
  const r1 = await collect(cut);
  assert.ok(r1.skipped.some((s) => /gzip|tar/.test(s.reason)), JSON.stringify(r1.skipped));
  const bad = path.join(dir, 'bad.tar');
  const bytes = Buffer.from(fs.readFileSync(tar));
  const second = bytes.indexOf('ustar', bytes.indexOf('ustar') + 1) - 257;
  bytes.fill(0x41, second + 148, second + 156); // the second header's checksum
  fs.writeFileSync(bad, bytes);
  const r2 = await collect(bad);
  assert.ok(r2.skipped.some((s) => /tar: .*checksum/.test(s.reason)), JSON.stringify(r2.skipped));
  // A missing path is a notice too.
  const r3 = await collect(path.join(dir, 'nope'));
  assert.match(r3.skipped[0]!.reason, /ENOENT/);
});

test('stripEnvelope drops only a leading mbox From line', () => {
  assert.equal(stripEnvelope(Buffer.from('From a b\nX: y\n')).toString(), 'X: y\n');
  assert.equal(stripEnvelope(Buffer.from('From: a\n')).toString(), 'From: a\n');
  assert.equal(stripEnvelope(Buffer.from('X: y\n')).toString(), 'X: y\n');
});

const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../shared/corpus/sa2002-dev.tar.gz');

test('the development corpus tarball: 500 spam and 2,750 ham, read as a stream', { skip: !fs.existsSync(CORPUS) && 'corpus not present' }, async () => {
  let spam = 0;
  let ham = 0;
  let envelope = 0;
  const skipped: CorpusNotice[] = [];
  const before = process.memoryUsage().rss;
  for await (const m of readMessages(CORPUS, { onSkip: (n) => skipped.push(n) })) {
    if (m.name.includes(':spam/')) spam++;
    else if (m.name.includes(':ham/')) ham++;
    if (m.raw.subarray(0, 5).toString() === 'From ') envelope++;
  }
  assert.deepEqual({ spam, ham, envelope, skipped }, { spam: 500, ham: 2750, envelope: 0, skipped: [] });
  // 24 MB unpacked is never held at once.
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024);
});
