// `portcullis dkim`: keygen, list, rotate, remove on a temporary data directory, and the answers
// to bad input (exit 2 for usage, 1 for a refused change, with the fault named).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimCommand } from './dkim.js';

function run(dataDir: string, args: string[], now = new Date('2026-12-07T10:00:00Z')) {
  let stdout = '';
  let stderr = '';
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, now: () => now };
  return dkimCommand(args, { data_dir: dataDir, domains: ['example.org'] }, io).then((code) => ({ code, stdout, stderr }));
}

test('keygen: dated selector by type, key file 0600, the record on stdout; a second active key of one type is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-cli-'));
  const rsa = await run(dir, ['keygen', 'Example.ORG.']);
  assert.equal(rsa.code, 0, rsa.stderr);
  assert.match(rsa.stdout, /^rsa20261207\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=rsa; " "p=/);
  assert.equal(statSync(join(dir, 'dkim/example.org/rsa20261207.key')).mode & 0o777, 0o600);
  const ed = await run(dir, ['keygen', 'example.org', '--type', 'ed25519']);
  assert.equal(ed.code, 0, ed.stderr);
  assert.match(ed.stdout, /^ed20261207\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=ed25519; " "p=[A-Za-z0-9+/]{43}=" \)\n$/);
  assert.match(ed.stderr, /signed with it and rsa20261207/);
  const again = await run(dir, ['keygen', 'example.org']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /active rsa key already \(selector rsa20261207\).*dkim rotate example\.org/);
  const other = await run(dir, ['keygen', 'elsewhere.test', '--selector', 'mail']);
  assert.equal(other.code, 0);
  assert.match(other.stderr, /elsewhere\.test is not in "domains"/);
});

test('rotate: a new dated selector signs, the old key is kept inactive until remove', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-cli-'));
  assert.equal((await run(dir, ['keygen', 'example.org'])).code, 0);
  const rot = await run(dir, ['rotate', 'example.org'], new Date('2026-12-07T11:00:00Z'));
  assert.equal(rot.code, 0, rot.stderr);
  assert.match(rot.stdout, /^rsa20261207-2\._domainkey\.example\.org\. IN TXT/);
  assert.match(rot.stderr, /rsa20261207 no longer signs/);
  const list = JSON.parse((await run(dir, ['list', '--json'])).stdout) as Array<{ domain: string; selector: string; type: string; created: string; active: boolean; record: string }>;
  assert.deepEqual(list.map((k) => [k.selector, k.active]), [['rsa20261207', false], ['rsa20261207-2', true]]);
  assert.equal(list[1]!.created, '2026-12-07T11:00:00.000Z');
  assert.match(list[0]!.record, /^rsa20261207\._domainkey\.example\.org\. IN TXT/);
  const text = await run(dir, ['list', 'example.org']);
  assert.match(text.stdout, /example\.org {2}rsa20261207 {2}rsa {2}2026-12-07T10:00:00\.000Z {2}inactive\n {2}rsa20261207\._domainkey/);
  const rm = await run(dir, ['remove', 'example.org', 'rsa20261207']);
  assert.equal(rm.code, 0);
  assert.equal(JSON.parse((await run(dir, ['list', '--json'])).stdout).length, 1);
  const last = await run(dir, ['remove', 'example.org', 'rsa20261207-2']);
  assert.match(last.stdout, /no active key left: its mail is no longer signed/);
});

test('bad input: named faults, exit 2 for usage and 1 for refusals, nothing created', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dkim-cli-'));
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /a subcommand is needed/],
    [['sign', 'example.org'], 2, /unknown subcommand "sign"/],
    [['keygen'], 2, /keygen takes one DOMAIN/],
    [['keygen', 'example.org', '--type', 'dsa'], 2, /--type must be rsa or ed25519, not "dsa"/],
    [['keygen', 'example.org', '--bits', '1024'], 2, /Unknown option '--bits'/],
    [['keygen', 'not_a domain'], 1, /"not_a domain" is not a domain name/],
    [['keygen', 'example.org', '--selector', '../../etc'], 1, /is not a selector/],
    [['rotate', 'example.org'], 1, /has no DKIM key: "dkim keygen example\.org"/],
    [['rotate', 'example.org', '--selector', 'x'], 2, /no --selector/],
    [['remove', 'example.org'], 2, /remove takes DOMAIN SELECTOR/],
    [['remove', 'example.org', 'nope'], 1, /has no key with selector "nope"/],
    [['list', '../x'], 1, /not a domain name/],
  ];
  for (const [args, code, message] of cases) {
    const r = await run(dir, args);
    assert.equal(r.code, code, `dkim ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, `dkim ${args.join(' ')}`);
  }
  assert.equal((await run(dir, ['list'])).stdout, 'no DKIM keys (portcullis dkim keygen DOMAIN)\n');
});
