// The Public Suffix List as tldts applies it, against the PSL project's own test vectors
// (../shared/conformance/dmarc/psl) and against the list file of a known commit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { domainToASCII } from 'node:url';
import { getPublicSuffix } from 'tldts';
import { hostInfo, lookalikeReason, registrableDomain } from './host.js';
import { sharedDir } from '../../../test/helpers/paths.js';

const PSL = path.join(sharedDir, 'conformance', 'dmarc', 'psl');

function vectors(): [string | null, string | null][] {
  const out: [string | null, string | null][] = [];
  const nul = (s: string) => (s === 'null' ? null : s);
  for (const line of fs.readFileSync(path.join(PSL, 'tests.txt'), 'utf8').split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('//')) continue;
    const [a, b] = t.split(/\s+/);
    out.push([nul(a!), nul(b!)]);
  }
  for (const m of fs.readFileSync(path.join(PSL, 'test_psl.txt'), 'utf8').matchAll(/^checkPublicSuffix\((null|'[^']*'), (null|'[^']*')\);/gm)) {
    out.push([m[1] === 'null' ? null : m[1]!.slice(1, -1), m[2] === 'null' ? null : m[2]!.slice(1, -1)]);
  }
  return out;
}

test('PSL test vectors (tests.txt and test_psl.txt): registrable domain', () => {
  const v = vectors();
  assert.ok(v.length >= 150, `only ${v.length} vectors read`);
  const wrong: string[] = [];
  for (const [input, want] of v) {
    // Our hosts are ASCII (punycode): compare in that form.
    const got = registrableDomain(input === null ? null : domainToASCII(input) || input.toLowerCase());
    const expected = want === null ? null : domainToASCII(want);
    if (got !== expected) wrong.push(`${input}: want ${want} got ${got}`);
  }
  assert.deepEqual(wrong, []);
});

test('PSL list version: tldts against public_suffix_list.dat of the conformance commit', (t) => {
  let section = '';
  let rules = 0;
  const diffs: string[] = [];
  for (let line of fs.readFileSync(path.join(PSL, 'public_suffix_list.dat'), 'utf8').split('\n')) {
    line = line.trim();
    if (line.includes('===BEGIN PRIVATE')) section = 'private';
    else if (line.includes('===BEGIN ICANN')) section = 'icann';
    if (!line || line.startsWith('//') || line.startsWith('!')) continue;
    rules++;
    const rule = line.replace(/^\*\./, 'zz.');
    const got = getPublicSuffix(domainToASCII(`probe.${rule}`), { allowPrivateDomains: true });
    if (got !== domainToASCII(rule)) diffs.push(`${section}: ${line} (tldts: ${got})`);
  }
  t.diagnostic(`${rules} rules, ${diffs.length} differ: ${diffs.join('; ')}`);
  assert.ok(rules > 9000);
  // Differences come from list versions (docs/uribl.md lists them); they must stay few and
  // never touch the ICANN section, which is what registrable domains of real TLDs rest on.
  assert.ok(diffs.length < 50, diffs.join('\n'));
  assert.deepEqual(diffs.filter((d) => d.startsWith('icann')), []);
});

test('hostInfo: normalisation and refusals', () => {
  assert.deepEqual(hostInfo('WWW.Example.CO.UK.'), { host: 'www.example.co.uk', domain: 'example.co.uk', isIp: false, knownSuffix: true, orgLabel: 'example' });
  assert.equal(hostInfo('пример.рф')?.host, 'xn--e1afmkfd.xn--p1ai');
  assert.equal(hostInfo('[2001:db8::1]')?.isIp, true);
  for (const bad of ['', 'localhost', 'co.uk', '.example.com', 'a..b.com', '-bad-.com', 'x'.repeat(64) + '.com']) {
    assert.equal(hostInfo(bad), undefined, bad);
  }
  assert.equal(hostInfo('foo.unknowntld')?.knownSuffix, false);
});

test('look-alike hosts: mixed script and whole-script confusables', () => {
  assert.match(lookalikeReason(hostInfo('аpple.com')!.host) ?? '', /mixes Latin with Cyrillic/);
  assert.match(lookalikeReason(hostInfo('аррӏе.com')!.host) ?? '', /look Latin/);
  assert.equal(lookalikeReason(hostInfo('пример.рф')!.host), undefined);
  assert.equal(lookalikeReason(hostInfo('münchen.de')!.host), undefined);
  assert.equal(lookalikeReason('example.com'), undefined);
});
