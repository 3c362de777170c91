// `portcullis scan` and `train` on what people have on disk, through the real CLI: symlinked
// files and folders, Maildirs (cur/ and new/ read, tmp/ not), empty folders (an error, not an
// empty result), unreadable files named and counted, and `user add` from a pipe.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/gateway.js';

let tmp: string;
let configFile: string;

const message = (subject: string, body = 'Hello, this is an ordinary message about the meeting tomorrow.\n') =>
  `From: Alice <alice@sender.example>\nTo: bob@example.test\nSubject: ${subject}\nDate: Mon, 7 Dec 2026 08:00:00 +0000\n` +
  `Message-ID: <${subject.replace(/\W/g, '')}@sender.example>\n\n${body}`;

type Result = { file: string; action: string };
const files = (stdout: string) => (JSON.parse(stdout) as Result[]).map((r) => r.file);

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-scan-input-'));
  configFile = path.join(tmp, 'portcullis.yaml');
  fs.writeFileSync(configFile, [
    'hostname: mx.example.test', 'domains: [example.test]', `data_dir: ${path.join(tmp, 'data')}`,
    'log: { level: warn }', 'metrics: { enabled: false }', "dns: { servers: ['127.0.0.1:1'] }", '',
  ].join('\n'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cli = (args: string[], stdin?: string) => runCli([...args, '--config', configFile], { stdin, timeoutMs: 60_000 });

test('scan follows symlinked files and folders, once each, and a link loop ends', async () => {
  const real = path.join(tmp, 'real');
  fs.mkdirSync(path.join(real, 'inner'), { recursive: true });
  fs.writeFileSync(path.join(real, 'a.eml'), message('first'));
  fs.writeFileSync(path.join(real, 'inner', 'b.eml'), message('second'));
  const links = path.join(tmp, 'links');
  fs.mkdirSync(links);
  fs.symlinkSync(path.join(real, 'a.eml'), path.join(links, 'file-link.eml'));
  fs.symlinkSync(path.join(real, 'inner'), path.join(links, 'dir-link'));
  fs.symlinkSync(links, path.join(links, 'loop')); // points back at its own folder
  fs.symlinkSync(path.join(tmp, 'nowhere.eml'), path.join(links, 'broken.eml'));
  const r = await cli(['scan', '--json', links]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(files(r.stdout), [path.join(links, 'dir-link', 'b.eml'), path.join(links, 'file-link.eml')]);
  // The broken link is named and counted, not silently dropped.
  assert.match(r.stderr, /skipped .*broken\.eml: broken symbolic link: ENOENT/);
  assert.match(r.stderr, /1 file not read/);
  // A symlink given on the command line is read like its target.
  const direct = await cli(['scan', '--json', path.join(links, 'dir-link')]);
  assert.equal(direct.code, 0, direct.stderr);
  assert.deepEqual(files(direct.stdout), [path.join(links, 'dir-link', 'b.eml')]);
});

test('scan reads a Maildir from cur/ and new/ and its Maildir++ folders, never tmp/', async () => {
  const md = path.join(tmp, 'Maildir');
  for (const d of ['cur', 'new', 'tmp', '.Junk/cur', '.Junk/new', '.Junk/tmp']) fs.mkdirSync(path.join(md, d), { recursive: true });
  fs.writeFileSync(path.join(md, 'cur', '1700000000.M1P1.host:2,S'), message('seen'));
  fs.writeFileSync(path.join(md, 'new', '1700000001.M2P1.host'), message('unseen'));
  fs.writeFileSync(path.join(md, 'tmp', '1700000002.M3P1.host'), message('half-delivered'));
  fs.writeFileSync(path.join(md, '.Junk', 'cur', '1700000003.M4P1.host:2,S'), message('junk'));
  fs.writeFileSync(path.join(md, '.Junk', 'tmp', '1700000004.M5P1.host'), message('junk-half'));
  fs.writeFileSync(path.join(md, 'dovecot-uidlist'), '3 V1700000000 N4\n');
  const r = await cli(['scan', '--json', md]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(files(r.stdout).map((f) => path.relative(md, f)).sort(),
    ['.Junk/cur/1700000003.M4P1.host:2,S', 'cur/1700000000.M1P1.host:2,S', 'new/1700000001.M2P1.host']);
  // The index file is not a message: named, counted.
  assert.match(r.stderr, /dovecot-uidlist: not a message/);
});

test('a path with no message is an error naming it, with a non-zero exit', async () => {
  const emptyDir = path.join(tmp, 'empty');
  fs.mkdirSync(path.join(emptyDir, 'sub'), { recursive: true });
  const r = await cli(['scan', emptyDir]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`no messages found in ${emptyDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.equal(r.stdout.trim(), '');
  // An empty Maildir too; and with another path that has messages, still an error.
  const md = path.join(tmp, 'EmptyMaildir');
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(md, d), { recursive: true });
  fs.writeFileSync(path.join(md, 'tmp', 'x'), message('only-in-tmp'));
  const one = path.join(tmp, 'one.eml');
  fs.writeFileSync(one, message('one'));
  const mixed = await cli(['scan', '--json', one, md]);
  assert.equal(mixed.code, 2, mixed.stderr);
  assert.deepEqual(files(mixed.stdout), [one]);
  assert.match(mixed.stderr, /no messages found in .*EmptyMaildir/);
  // train says the same.
  const t = await cli(['train', '--ham', emptyDir]);
  assert.equal(t.code, 1, t.stdout + t.stderr);
  assert.match(t.stderr, /train: no messages found in .*empty/);
});

test('unreadable files are named and counted', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, async () => {
  const dir = path.join(tmp, 'perm');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'ok.eml'), message('readable'));
  fs.writeFileSync(path.join(dir, 'locked.eml'), message('locked'));
  fs.chmodSync(path.join(dir, 'locked.eml'), 0o000);
  const r = await cli(['scan', '--json', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(files(r.stdout), [path.join(dir, 'ok.eml')]);
  assert.match(r.stderr, /skipped .*locked\.eml: EACCES/);
  assert.match(r.stderr, /1 file not read/);
});

test('user add reads a password from a pipe, line ends and all', async () => {
  const r = await cli(['user', 'add', 'pipe@example.test'], 'a-long-password-1\r\n\n');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /user pipe@example.test added/);
  const again = await cli(['user', 'add', 'flag@example.test', '--password-stdin'], 'a-long-password-2\n');
  assert.equal(again.code, 0, again.stderr);
});
