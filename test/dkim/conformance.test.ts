// Third-party DKIM, ARC and DMARC vectors (../shared/conformance, read only) through the
// "dkim_dmarc_arc" check and the gateway's real DNS path: each case's key and policy records are
// served by a DNS server on loopback (test/helpers/dns-server.ts, dns2) and asked by the
// gateway's resolver (src/dns/resolver.ts, cache off), exactly as in production.
//
// Suites:
// - dkimpy (dkim/dkimpy): its keys and messages, with the expectations of dkimpy's own test code
//   (test_dkim.py, test_dkim_ed25519.py) restated below: sign-then-verify in every
//   canonicalization, implicit k=, altered body, extra From fields, degenerate folding, extra
//   headers, and the bad key records (badk, badversion, test_bad, tlsrpt).
// - RFC 8463 (dkim/rfc8463-example.eml + .yaml): the Ed25519 + RSA example, both must pass.
// - ValiMail ARC validation suite (arc/arc-draft-validation-tests.yml): 171 messages, expected cv.
// - blaze (dmarc/blaze): real messages with their DNS snapshot and blaze's expected results.
// Every case must give the expected result except the documented deviations (docs/dkim-dmarc-arc.md);
// a deviation that starts agreeing fails the test, so the list cannot go stale.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { sharedDir } from '../helpers/paths.js';
import { startDnsServer, type DnsServer, type ZoneData } from '../helpers/dns-server.js';
import { createResolver } from '../../src/dns/resolver.js';
import { authenticationCheck } from '../../src/checks/dkim/authentication-check.js';
import { dkimConfigSchema } from '../../src/checks/dkim/config.js';
import type { CheckResult, EnvelopeFacts, Facts, SpfResult } from '../../src/checks/types.js';
import { connFacts, crlf, ed25519FromSeed, envelope, messageFacts, sign } from './support.js';

const CONF = path.join(sharedDir, 'conformance');
const read = (rel: string) => fs.readFileSync(path.join(CONF, rel));
const readText = (rel: string) => read(rel).toString('utf8').trim();

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({});
});
after(async () => {
  await dns?.close();
});

/** Runs the check on a message with `zone` served; a fresh resolver, no cache. */
async function verify(raw: Buffer, zone: ZoneData, opts: { env?: EnvelopeFacts; spf?: Facts['spf']; config?: object } = {}): Promise<CheckResult> {
  dns.set(zone);
  const resolver = createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, maxInflight: 100, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });
  const config = dkimConfigSchema.parse({ dkim: { min_rsa_bits: 1024 }, ...opts.config });
  const check = authenticationCheck({ resolver, config, hostname: 'mx.example.test', timeoutMs: 10_000 });
  return check.run({ conn: connFacts(), envelope: opts.env ?? envelope('sender@example.net'), message: messageFacts(raw), facts: opts.spf ? { spf: opts.spf } : {} });
}

const txt = (data: string) => [{ type: 'TXT' as const, data }];
/** The dkim= results of a check result, in header order: "pass d=example.com s=test". */
const dkimResults = (r: CheckResult) => (r.authResults ?? []).filter((a) => a.startsWith('dkim=')).map((a) => {
  const m = /^dkim=(\w+).*header\.d=(\S+) header\.s=(\S+)/.exec(a);
  return m ? `${m[1]} d=${m[2]} s=${m[3]}` : a;
});

interface Outcome { suite: string; id: string; problem?: string }

function report(t: { diagnostic(s: string): void }, suite: string, outcomes: Outcome[], deviations: ReadonlyMap<string, string>): void {
  const failures: string[] = [];
  const deviated: string[] = [];
  let passed = 0;
  for (const o of outcomes) {
    const why = deviations.get(o.id);
    if (why) {
      if (!o.problem) failures.push(`${o.id}: listed as a deviation but now agrees: remove it from the list and from docs/dkim-dmarc-arc.md`);
      else deviated.push(`${o.id}: ${o.problem}`);
    } else if (o.problem) failures.push(`${o.id}: ${o.problem}`);
    else passed++;
  }
  const line = `${suite}: ${passed} agree of ${outcomes.length} (${deviated.length} documented deviations)`;
  console.log(line);
  t.diagnostic(line);
  for (const d of deviated) t.diagnostic(`deviation ${d}`);
  assert.deepEqual(failures, [], `${suite}: ${failures.length} unexpected results`);
}

// ---------------------------------------------------------------------------------------------
// dkimpy

/** dkimpy's key for 20120113._domainkey.gmail.com, from its test_dkim.py (degenerate folding test). */
const GMAIL_2012 = 'k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1Kd87/UeJjenpabgbFwh+eBCsSTrqmwIYYvywlbhbqoo2DymndFkbjOVIPIldNs/m40KF+yzMn1skyoxcTUGCQs8g3FgD2Ap3ZB5DekAo5wMmk4wimDO+U8QzI3SD07y2+07wlNWwIt8svnxgdxGkVbbhzY8i+RQ9DpSVpPbF7ykQxtKXkv/ahW3KjViiAH+ghvvIhkx4xYSIc9oSwVmAl5OctMEeWUwg8Istjqz8BZeTWbf41fbNhte7Y+YqZOwq1Sd0DbvYAD9NOZK9vlfuac0598HY+vtSBczUiKERHv1yRbcaQtZFh5wtiRrN04BLUTD21MycBX5jYchHjPY/wIDAQAB';

export const DKIMPY_DEVIATIONS: ReadonlyMap<string, string> = new Map([
  ['extra-from-on-top',
    'dkimpy refuses any message with a From field its signature does not cover. RFC 6376 s5.4.2 has the verifier ' +
    'take fields from the bottom up, so a From added above the signed one is outside the signature and the ' +
    'signature still verifies (mailauth, OpenDKIM). The extra From does not get through unnoticed: MULTIPLE_FROM ' +
    '(required-headers check) scores it, and DMARC evaluates every From domain.'],
]);

test('dkimpy test data: keys, messages and bad key records', async (t) => {
  const d = 'dkim/dkimpy';
  const rsa = readText(`${d}/test.private`);
  const message = crlf(read(`${d}/test.message`));
  const outcomes: Outcome[] = [];
  const expect = async (id: string, raw: Buffer, zone: ZoneData, want: string) => {
    const got = dkimResults(await verify(raw, zone));
    outcomes.push({ suite: 'dkimpy', id, problem: got[0]?.startsWith(`${want} `) ? undefined : `got ${got.join(', ') || 'nothing'}, expected dkim=${want}` });
  };
  const key = (file: string) => ({ 'test._domainkey.example.com': txt(readText(`${d}/${file}`)) });

  // test_verifies / test_implicit_k: every canonicalization, with test.txt and test2.txt (no k=).
  for (const c of ['simple/simple', 'simple/relaxed', 'relaxed/simple', 'relaxed/relaxed']) {
    const signed = await sign(message, { domain: 'example.com', selector: 'test', privateKey: rsa, canonicalization: c });
    await expect(`verifies-${c}`, signed, key('test.txt'), 'pass');
    await expect(`implicit-k-${c}`, signed, key('test2.txt'), 'pass');
    // test_altered_body_fails
    await expect(`altered-body-${c}`, Buffer.concat([signed, Buffer.from('foo\r\n')]), key('test.txt'), 'fail');
  }
  const signed = await sign(message, { domain: 'example.com', selector: 'test', privateKey: rsa });
  // test_multiple_from_fails: an unsigned extra header is fine; an extra From at the end is not.
  const [head, body] = [signed.subarray(0, signed.indexOf('\r\n\r\n')), signed.subarray(signed.indexOf('\r\n\r\n'))];
  await expect('extra-header', Buffer.concat([head, Buffer.from('\r\nX-Foo: bar'), body]), key('test.txt'), 'pass');
  await expect('extra-from-at-end', Buffer.concat([head, Buffer.from('\r\nFrom: "Resident Evil" <sales@spammer.com>'), body]), key('test.txt'), 'fail');
  await expect('extra-from-on-top', Buffer.concat([Buffer.from('From: "Resident Evil" <sales@spammer.com>\r\n'), signed]), key('test.txt'), 'fail');
  // Bad key records: k= not a key type, a malformed v= tag, a truncated key, a key for another service.
  await expect('badk', signed, key('badk.txt'), 'permerror');
  await expect('badversion', signed, key('badversion.txt'), 'permerror');
  await expect('test_bad', signed, key('test_bad.txt'), 'permerror');
  await expect('tlsrpt-key-for-email', signed, key('test_tlsrpt.txt'), 'permerror');
  // test_degenerate_folding: a real Gmail signature with odd folding.
  await expect('degenerate-folding', crlf(read(`${d}/test2.message`)), { '20120113._domainkey.gmail.com': txt(GMAIL_2012) }, 'pass');
  // test_extra_headers: every header signed, Received fields repeated.
  const mbox = crlf(read(`${d}/message.mbox`));
  for (const c of ['simple/simple', 'relaxed/relaxed']) {
    const names = [...new Set([...mbox.subarray(0, mbox.indexOf('\r\n\r\n')).toString('latin1').matchAll(/^([^\s:]+):/gm)].map((m) => m[1]!))];
    const all = await sign(mbox, { domain: 'example.com', selector: 'test', privateKey: rsa, canonicalization: c, headerList: names });
    await expect(`extra-headers-${c}`, all, key('test.txt'), 'pass');
  }
  // test_dkim_ed25519: ed25519test.key / ed25519test.dns, and the RFC 8032 7.1 key with its record.
  const ed = ed25519FromSeed(readText(`${d}/ed25519test.key`));
  const edSigned = await sign(crlf(read(`${d}/ed25519test.msg`)), { domain: 'example.com', selector: 'test', privateKey: ed, algorithm: 'ed25519-sha256' });
  await expect('ed25519', edSigned, key('ed25519test.dns'), 'pass');
  await expect('ed25519-wrong-key', edSigned, key('eximtest.dns'), 'fail');
  // rfc6376.signed.msg: signed by dkimpy (Ed25519 brisbane + RSA test of football.example.com).
  const rfc = YAML.parse(read('dkim/rfc8463-example.yaml').toString()) as { txt_records: Record<string, string> };
  const footballZone = Object.fromEntries(Object.entries(rfc.txt_records).map(([k, v]) => [k, txt(v)]));
  const both = dkimResults(await verify(crlf(read(`${d}/rfc6376.signed.msg`)), footballZone));
  outcomes.push({ suite: 'dkimpy', id: 'rfc6376.signed.msg', problem: both.length === 2 && both.every((r) => r.startsWith('pass ')) ? undefined : `got ${both.join(', ')}` });
  report(t, 'dkimpy', outcomes, DKIMPY_DEVIATIONS);
});

// ---------------------------------------------------------------------------------------------
// RFC 8463

test('RFC 8463 example: the Ed25519 and the RSA signature both verify', async () => {
  const doc = YAML.parse(read('dkim/rfc8463-example.yaml').toString()) as {
    txt_records: Record<string, string>; expected: { d: string; s: string; a: string; result: string }[];
  };
  const raw = read('dkim/rfc8463-example.eml');
  const r = await verify(raw, Object.fromEntries(Object.entries(doc.txt_records).map(([k, v]) => [k, txt(v)])));
  const got = dkimResults(r);
  for (const e of doc.expected) assert.ok(got.includes(`${e.result} d=${e.d} s=${e.s}`), `${e.a}: got ${got.join(', ')}`);
  assert.ok(r.symbols?.some((s) => s.name === 'DKIM_VALID_AU'), 'aligned with From football.example.com');
  console.log('RFC 8463: 2 agree of 2');
});

// ---------------------------------------------------------------------------------------------
// ValiMail ARC validation suite

interface ArcScenario { description: string; tests: Record<string, { message: string; cv: string; description?: string }>; 'txt-records'?: Record<string, string> }

/**
 * Expected "" (3 cases, all with an ARC-Seal that says cv=fail): the suite leaves them blank;
 * RFC 8617 s5.2 makes such a chain "fail", and dkimpy (the suite's cross-check) says fail.
 */
export const ARC_DEVIATIONS: ReadonlyMap<string, string> = new Map();

test('ValiMail ARC validation suite: chain validation status (cv)', async (t) => {
  const docs = YAML.parseAllDocuments(read('arc/arc-draft-validation-tests.yml').toString()).map((d) => d.toJS() as ArcScenario);
  const outcomes: Outcome[] = [];
  for (const s of docs) {
    const zone = Object.fromEntries(Object.entries(s['txt-records'] ?? {}).map(([k, v]) => [k, txt(v.replace(/\s+/g, ' ').trim())]));
    for (const [id, c] of Object.entries(s.tests)) {
      const want = (c.cv || 'fail').toLowerCase();
      const r = await verify(crlf(c.message ?? ''), zone, { config: { dmarc: { enabled: false } } });
      const arc = (r.authResults ?? []).find((a) => a.startsWith('arc=')) ?? '';
      const got = /^arc=(\w+)/.exec(arc)?.[1] ?? '(none reported)';
      const symbol = r.symbols?.find((x) => x.name.startsWith('ARC_'))?.name;
      assert.equal(symbol, `ARC_${got.toUpperCase()}`, `${id}: symbol and header agree`);
      outcomes.push({ suite: 'arc', id, problem: got === want ? undefined : `cv ${got}, expected ${want} (${s.description}: ${c.description ?? ''}; ${arc})` });
    }
  }
  assert.equal(outcomes.length, 171);
  report(t, 'ValiMail ARC', outcomes, ARC_DEVIATIONS);
});

// ---------------------------------------------------------------------------------------------
// blaze DMARC messages

interface BlazeExpected {
  messages: Record<string, {
    spf?: { mailfrom: string; ip: string; result: string };
    dkim?: { d: string; s?: string; result: string }[];
    dmarc?: { header_from: string; result: string };
  }>;
}

const SHA1 = 'signed with rsa-sha1 in 2015; RFC 8301 s3.1 says verifiers MUST NOT consider rsa-sha1 signatures valid, so ' +
  'we report dkim=policy (dkim.allow_sha1: true gives blaze\'s "pass"). DMARC still passes on aligned SPF, as blaze says.';
export const BLAZE_DEVIATIONS: ReadonlyMap<string, string> = new Map([
  ['001.mail dkim sendgrid.info', SHA1],
  ['001.mail dkim github.com', SHA1],
  ['004.mail dkim discoursemail.com',
    'blaze reports "fail" ("Invalid DKIM-Signature without expiration"); mx.google.com recorded pass at delivery ' +
    'and dkimpy 1.1.4 verifies it against the same DNS snapshot (expected.yaml says so): we agree with dkimpy.'],
]);

function blazeZone(): ZoneData {
  const dir = path.join(CONF, 'dmarc/blaze/cache');
  const zone: Record<string, { type: 'TXT'; data: string }[]> = {};
  for (const f of fs.readdirSync(dir)) {
    if (!f.endsWith('.dns')) continue;
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.startsWith('txt:'));
    zone[f.slice(0, -4)] = lines.map((l) => ({ type: 'TXT', data: l.slice(4) }));
  }
  return zone;
}

test('blaze: real messages with their DNS snapshot (DKIM per signature, DMARC)', async (t) => {
  const exp = YAML.parse(read('dmarc/blaze/expected.yaml').toString()) as BlazeExpected;
  const zone = blazeZone();
  const outcomes: Outcome[] = [];
  for (const [file, e] of Object.entries(exp.messages)) {
    if (!e.dkim && !e.dmarc) continue; // collected-only messages: no verification expected
    // SPF comes from the MAIL stage in the gateway; here it is blaze's recorded SPF result.
    const spf = e.spf ? { result: e.spf.result as SpfResult, domain: e.spf.mailfrom.split('@').pop()! } : undefined;
    const r = await verify(crlf(read(`dmarc/blaze/${file}`)), zone, { env: envelope(e.spf?.mailfrom ?? ''), spf });
    const got = dkimResults(r);
    for (const want of e.dkim ?? []) {
      const mine = got.find((g) => g.includes(` d=${want.d} `) && (!want.s || g.endsWith(` s=${want.s}`)));
      const id = `${file} dkim ${want.d}`;
      outcomes.push({ suite: 'blaze', id, problem: mine?.startsWith(`${want.result} `) ? undefined : `got ${mine ?? 'no result'}, blaze says ${want.result}` });
    }
    if (e.dmarc) {
      const dm = (r.authResults ?? []).find((a) => a.startsWith('dmarc=')) ?? '';
      const ok = dm.startsWith(`dmarc=${e.dmarc.result}`) && dm.endsWith(`header.from=${e.dmarc.header_from}`);
      outcomes.push({ suite: 'blaze', id: `${file} dmarc`, problem: ok ? undefined : `got ${dm}, blaze says dmarc=${e.dmarc.result} for ${e.dmarc.header_from}` });
    }
  }
  report(t, 'blaze', outcomes, BLAZE_DEVIATIONS);
});
