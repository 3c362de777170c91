import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { sealMessage } from 'mailauth/lib/arc/index.js';
import { FakeResolver, conn, refusal, type FakeZone } from '../test-support.js';
import { parseHeaderBlock } from '../../protocol/headers.js';
import type { CheckResult, Facts, MessageFacts } from '../types.js';
import { authenticationCheck, authenticationChecks, type AuthenticationDeps } from './authentication-check.js';
import { dkimConfigSchema } from './config.js';
import { parseDmarcRecord, sample } from './dmarc.js';
import { tagListProblem, REQUIRED } from './tag-list.js';
import { messageModel } from '../../mime/model.js';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 });
const PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const KEY = `v=DKIM1; k=rsa; p=${crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64')}`;

function message(from: string, extra = '', body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: <${from}>\r\nTo: <rcpt@example.test>\r\nSubject: test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <${crypto.randomBytes(6).toString('hex')}@x>\r\n${extra}\r\n${body}`, 'latin1');
}

async function signed(raw: Buffer, domain: string, selector = 'sel'): Promise<Buffer> {
  const r = await dkimSign(raw, { signatureData: [{ signingDomain: domain, selector, privateKey: PEM }] } as never);
  return Buffer.concat([Buffer.from(r.signatures, 'latin1'), raw]);
}

function facts(raw: Buffer): MessageFacts {
  const end = raw.indexOf('\r\n\r\n');
  return { ...messageModel({ size: raw.length, stream: () => Readable.from([raw]) }), headers: parseHeaderBlock(raw.subarray(0, end + 2)), bareNewlines: 0 };
}

async function run(raw: Buffer, zone: FakeZone, over: { config?: object; spf?: Facts['spf']; deps?: Partial<AuthenticationDeps>; authUser?: string } = {}): Promise<CheckResult> {
  const check = authenticationCheck({
    resolver: new FakeResolver(zone), config: dkimConfigSchema.parse(over.config ?? {}), hostname: 'mx.test', ...over.deps,
  });
  return check.run({
    conn: conn(over.authUser ? { authUser: over.authUser } : {}),
    envelope: { sender: 'bounce@example.org', recipients: ['rcpt@example.test'] },
    message: facts(raw),
    // The SPF result comes as a fact from the MAIL-stage check (declared with `after`).
    facts: over.spf ? { spf: over.spf } : {},
  });
}

const names = (r: CheckResult) => (r.symbols ?? []).map((s) => s.name).sort();
const ar = (r: CheckResult, method: string) => (r.authResults ?? []).filter((a) => a.startsWith(`${method}=`));
const zoneWith = (dmarc?: string, extra: FakeZone = {}): FakeZone => ({
  'TXT sel._domainkey.example.org': [[KEY]],
  ...(dmarc ? { 'TXT _dmarc.example.org': [[dmarc]] } : {}),
  ...extra,
});

describe('DKIM', () => {
  test('a valid aligned signature: DKIM_VALID + DKIM_VALID_AU, dkim=pass with d, s and the first 8 characters of b', async () => {
    const r = await run(await signed(message('a@example.org'), 'example.org'), zoneWith());
    assert.deepEqual(names(r), ['ARC_NONE', 'DKIM_VALID', 'DKIM_VALID_AU', 'DMARC_NA']);
    assert.match(ar(r, 'dkim')[0]!, /^dkim=pass header\.d=example\.org header\.s=sel header\.b="?[A-Za-z0-9+/]{8}"?$/);
  });

  test('a changed body: dkim=fail naming the body hash; a changed header: dkim=fail naming the signature', async () => {
    const raw = await signed(message('a@example.org'), 'example.org');
    const body = await run(Buffer.concat([raw, Buffer.from('appended\r\n')]), zoneWith());
    assert.match(ar(body, 'dkim')[0]!, /^dkim=fail \(body hash did not verify/);
    assert.match(body.symbols!.find((s) => s.name === 'DKIM_INVALID')!.reason, /body hash/);
    const header = await run(Buffer.from(raw.toString('latin1').replace('Subject: test', 'Subject: tset'), 'latin1'), zoneWith());
    assert.match(ar(header, 'dkim')[0]!, /^dkim=fail \(signature did not verify/);
  });

  test('key problems are DKIM_PERMFAIL: none published, revoked, malformed; DNS failure is DKIM_TEMPFAIL', async () => {
    const raw = await signed(message('a@example.org'), 'example.org');
    const none = await run(raw, {});
    assert.match(ar(none, 'dkim')[0]!, /^dkim=permerror \(no key record at sel\._domainkey\.example\.org\)/);
    const revoked = await run(raw, { 'TXT sel._domainkey.example.org': [['v=DKIM1; k=rsa; p=']] });
    assert.match(revoked.symbols!.find((s) => s.name === 'DKIM_PERMFAIL')!.reason, /revoked/);
    const temp = await run(raw, { 'TXT sel._domainkey.example.org': 'error' });
    assert.ok(names(temp).includes('DKIM_TEMPFAIL'), names(temp).join());
    assert.match(ar(temp, 'dkim')[0]!, /^dkim=temperror/);
  });

  test('no signature: DKIM_NONE and dkim=none', async () => {
    const r = await run(message('a@example.org'), {});
    assert.ok(names(r).includes('DKIM_NONE'));
    assert.deepEqual(ar(r, 'dkim'), ['dkim=none']);
  });

  test('hostile: 300 signatures cost at most max_signatures key lookups; the rest are reported unchecked', async () => {
    const one = (await signed(message('a@example.org'), 'example.org')).toString('latin1');
    const sig = one.slice(0, one.indexOf('From:'));
    const many = Array.from({ length: 300 }, (_, k) => sig.replace('s=sel', `s=s${k}`).replace(/; l=\d+|(?=; bh=)/, `; l=${k}`)).join('');
    const resolver = new FakeResolver({});
    const check = authenticationCheck({ resolver, config: dkimConfigSchema.parse({ dmarc: { enabled: false }, arc: { enabled: false } }), hostname: 'mx.test' });
    const started = Date.now();
    const r = await check.run({ conn: conn(), envelope: { sender: '', recipients: ['r@x'] }, message: facts(Buffer.from(many + one.slice(one.indexOf('From:')), 'latin1')) });
    assert.ok(Date.now() - started < 5000);
    assert.ok(resolver.queries.length <= 5, resolver.queries.join());
    assert.equal(ar(r, 'dkim').filter((a) => a.includes('not checked')).length, 295);
  });

  test('malformed tag lists are rejected (RFC 6376 s3.2)', () => {
    assert.equal(tagListProblem('DKIM-Signature: v=1; a=rsa-sha256; b=x; bh=y; d=a; h=from; s=s;', REQUIRED.dkim), undefined);
    assert.match(tagListProblem('v=1; a=rsa-sha256; b=x; bh=y; d=a; h=from; s=s; s=t', REQUIRED.dkim)!, /duplicate tag s=/);
    assert.match(tagListProblem('v=1; a=rsa-sha256; b=x; bh=y; d=a; h=from; S=s', REQUIRED.dkim)!, /missing tag s=/);
    assert.match(tagListProblem('v=1; a=rsa-sha256;; b=x; bh=y; d=a; h=from; s=s', REQUIRED.dkim)!, /empty tag/);
  });

  test('not run for authenticated submission or trusted networks', async () => {
    assert.deepEqual(await run(message('a@example.org'), {}, { authUser: 'alice@example.test' }), {});
    const check = authenticationCheck({ resolver: new FakeResolver({}), config: dkimConfigSchema.parse({}), hostname: 'mx' });
    assert.deepEqual(await check.run({ conn: conn({ trustedNetwork: true }), envelope: { sender: '', recipients: [] }, message: facts(message('a@b.c')) }), {});
    assert.deepEqual(authenticationChecks({ resolver: new FakeResolver({}), config: dkimConfigSchema.parse({ dkim: { enabled: false }, dmarc: { enabled: false }, arc: { enabled: false } }), hostname: 'mx' }), []);
  });
});

describe('DMARC', () => {
  const forged = () => message('ceo@example.org');

  test('pass through aligned DKIM (relaxed: a subdomain signature) and through aligned SPF', async () => {
    const r = await run(await signed(message('a@example.org'), 'mail.example.org', 'sel'), {
      'TXT sel._domainkey.mail.example.org': [[KEY]], 'TXT _dmarc.example.org': [['v=DMARC1; p=reject']],
    });
    assert.ok(names(r).includes('DMARC_PASS'), names(r).join());
    assert.equal(ar(r, 'dmarc')[0], 'dmarc=pass (p=reject dis=none) header.from=example.org');
    const spf = await run(forged(), zoneWith('v=DMARC1; p=reject'), { spf: { result: 'pass', domain: 'bounces.example.org' } });
    assert.ok(names(spf).includes('DMARC_PASS'));
  });

  test('adkim=s: a subdomain signature does not align (mailauth 4.13.3 would say pass)', async () => {
    const r = await run(await signed(message('a@example.org'), 'mail.example.org', 'sel'), {
      'TXT sel._domainkey.mail.example.org': [[KEY]], 'TXT _dmarc.example.org': [['v=DMARC1; p=quarantine; adkim=s']],
    });
    assert.ok(names(r).includes('DMARC_QUARANTINE'), names(r).join());
  });

  test('p=reject: 550 5.7.1 naming the domain and the policy; dmarc=fail (p=reject dis=reject)', async () => {
    const r = await run(forged(), zoneWith('v=DMARC1; p=reject'), { spf: { result: 'fail', domain: 'example.org' } });
    assert.equal(refusal(r)?.kind, 'reject');
    assert.equal(refusal(r)!.reply.code, 550);
    assert.equal(refusal(r)!.reply.enhanced, '5.7.1');
    assert.match(refusal(r)!.reply.text, /DMARC policy of example\.org \(p=reject\)/);
    assert.equal(ar(r, 'dmarc')[0], 'dmarc=fail (p=reject dis=reject) header.from=example.org');
    assert.ok(names(r).includes('DMARC_REJECT'));
  });

  test('DMARC_REJECT: junk / score (was dmarc.enforce): no reject; the weight is the configuration\'s, never the check\'s', async () => {
    const r = await run(forged(), zoneWith('v=DMARC1; p=reject'));
    assert.equal(refusal(r, { actions: { DMARC_REJECT: 'junk' } }), undefined);
    assert.equal(refusal(r, { actions: { DMARC_REJECT: 'score' } }), undefined);
    assert.equal(r.symbols!.find((s) => s.name === 'DMARC_REJECT')!.score, undefined);
  });

  test('p=quarantine: DMARC_QUARANTINE (action junk, no score of its own); p=none: DMARC_NONE_POLICY; no record: DMARC_NA', async () => {
    const q = await run(forged(), zoneWith('v=DMARC1; p=quarantine'));
    assert.equal(q.symbols!.find((s) => s.name === 'DMARC_QUARANTINE')!.score, undefined);
    assert.equal(refusal(q), undefined);
    assert.deepEqual(q.facts?.dmarc, { result: 'fail', domain: 'example.org', aligned: false, policy: 'quarantine' });
    assert.ok(names(await run(forged(), zoneWith('v=DMARC1; p=none'))).includes('DMARC_NONE_POLICY'));
    assert.ok(names(await run(forged(), zoneWith())).includes('DMARC_NA'));
  });

  test('DNS failure on the record: DMARC_TEMPERROR, never a reject', async () => {
    const r = await run(forged(), { 'TXT _dmarc.example.org': 'error' });
    assert.ok(names(r).includes('DMARC_TEMPERROR'));
    assert.equal(refusal(r), undefined);
  });

  test('p=reject, the aligned DKIM key or the aligned SPF unreadable (DNS): DMARC_TEMPERROR, never a reject; an unaligned one changes nothing', async () => {
    const raw = await signed(message('a@example.org'), 'example.org');
    const key = await run(raw, { 'TXT sel._domainkey.example.org': 'error', 'TXT _dmarc.example.org': [['v=DMARC1; p=reject']] });
    assert.ok(names(key).includes('DMARC_TEMPERROR'), names(key).join());
    assert.equal(refusal(key), undefined);
    assert.match(key.symbols!.find((s) => s.name === 'DMARC_TEMPERROR')!.reason, /DKIM key of example\.org could not be fetched/);
    assert.equal(key.facts?.dmarc?.result, 'temperror');
    const spf = await run(forged(), zoneWith('v=DMARC1; p=reject'), { spf: { result: 'temperror', domain: 'example.org' } });
    assert.ok(names(spf).includes('DMARC_TEMPERROR'), names(spf).join());
    assert.equal(refusal(spf), undefined);
    const other = await run(await signed(message('a@example.org'), 'elsewhere.test'), { 'TXT sel._domainkey.elsewhere.test': 'error', 'TXT _dmarc.example.org': [['v=DMARC1; p=reject']] });
    assert.ok(names(other).includes('DMARC_REJECT'), names(other).join());
  });

  test('sp= for subdomains, np= for non-existent subdomains (RFC 9091)', async () => {
    const zone: FakeZone = { 'TXT _dmarc.example.org': [['v=DMARC1; p=reject; sp=quarantine; np=none']], 'A real.example.org': ['192.0.2.1'] };
    const sub = await run(message('x@real.example.org'), zone);
    assert.ok(names(sub).includes('DMARC_QUARANTINE'), names(sub).join());
    assert.match(ar(sub, 'dmarc')[0]!, /\(sp=quarantine dis=quarantine\)/);
    const ghost = await run(message('x@ghost.example.org'), zone);
    assert.ok(names(ghost).includes('DMARC_NONE_POLICY'), names(ghost).join());
    assert.match(ar(ghost, 'dmarc')[0]!, /\(np=none/);
  });

  test('pct: sampled per message (the same message always alike), out of sample means the next lesser policy', async () => {
    const raw = forged();
    const id = /Message-ID: (.*)\r\n/.exec(raw.toString())![1]!;
    const inSample = sample(id) < 50;
    const r1 = await run(raw, zoneWith('v=DMARC1; p=reject; pct=50'));
    const r2 = await run(raw, zoneWith('v=DMARC1; p=reject; pct=50'));
    assert.equal(refusal(r1)?.kind, refusal(r2)?.kind);
    assert.equal(refusal(r1)?.kind, inSample ? 'reject' : undefined);
    if (!inSample) assert.ok(names(r1).includes('DMARC_QUARANTINE'));
    assert.equal(refusal(await run(raw, zoneWith('v=DMARC1; p=reject; pct=0'))), undefined);
  });

  test('reject_exempt_domains: scored only, never rejected, logged as exempt', async () => {
    const r = await run(forged(), zoneWith('v=DMARC1; p=reject'), { config: { dmarc: { reject_exempt_domains: ['example.org'] } } });
    assert.equal(refusal(r), undefined);
    assert.match(ar(r, 'dmarc')[0]!, /local exemption/);
    assert.equal(r.symbols!.find((s) => s.name === 'DMARC_REJECT')!.score, undefined);
  });

  test('several From domains: each is evaluated, the worst decides', async () => {
    const raw = Buffer.from(message('a@example.org').toString().replace('From: <a@example.org>', 'From: <a@example.org>, <b@other.example>'));
    const r = await run(raw, zoneWith('v=DMARC1; p=none', { 'TXT _dmarc.other.example': [['v=DMARC1; p=reject']] }));
    assert.equal(refusal(r)?.kind, 'reject');
    assert.equal(ar(r, 'dmarc').length, 2);
  });

  test('record parsing: invalid p= with rua= reads as p=none; without rua= the record does not count; bad pct= is 100', () => {
    assert.equal(parseDmarcRecord('v=DMARC1; p=bogus; rua=mailto:a@b.c')?.p, 'none');
    assert.equal(parseDmarcRecord('v=DMARC1; p=bogus'), undefined);
    assert.equal(parseDmarcRecord('v=DMARC1; p=Reject; pct=abc')?.pct, 100);
    assert.equal(parseDmarcRecord('v=DMARC1; p=Reject')?.p, 'reject');
  });
});

describe('ARC override of a DMARC failure (RFC 7489 s7, RFC 8617 s7.2)', () => {
  /** A mailing list: example.org's signed mail, changed (subject tag, footer), sealed by lists.example.net. */
  async function viaList(aar: string): Promise<Buffer> {
    const original = await signed(message('ceo@example.org'), 'example.org');
    const changed = Buffer.from(original.toString('latin1').replace('Subject: test', 'Subject: [list] test') + '-- list footer\r\n', 'latin1');
    const seal = await sealMessage(changed, {
      signingDomain: 'lists.example.net', selector: 'arc', privateKey: PEM, authResults: `lists.example.net; ${aar}`, cv: 'none',
    } as never);
    return Buffer.concat([seal, changed]);
  }
  const zone = zoneWith('v=DMARC1; p=reject', { 'TXT arc._domainkey.lists.example.net': [[KEY]] });

  test('trusted sealer that saw dmarc=pass: not rejected, DMARC_ARC_OVERRIDE names the sealer', async () => {
    const raw = await viaList('dkim=pass header.d=example.org; spf=fail smtp.mailfrom=example.org; dmarc=pass header.from=example.org');
    const r = await run(raw, zone, { config: { arc: { trusted_sealers: ['example.net'] } } });
    assert.equal(refusal(r), undefined);
    assert.ok(names(r).includes('ARC_PASS') && names(r).includes('DMARC_ARC_OVERRIDE'), names(r).join());
    assert.match(r.symbols!.find((s) => s.name === 'DMARC_ARC_OVERRIDE')!.reason, /lists\.example\.net \(i=1\) saw dmarc=pass/);
    assert.match(ar(r, 'dmarc')[0]!, /^dmarc=fail \(p=reject dis=none arc override: lists\.example\.net\)/);
    assert.match(ar(r, 'arc')[0]!, /^arc=pass \(i=1 as\.d=lists\.example\.net/);
  });

  test('the same chain from an untrusted sealer, or a trusted one that saw a failure, is rejected', async () => {
    const good = await viaList('dkim=pass header.d=example.org; dmarc=pass header.from=example.org');
    assert.equal(refusal(await run(good, zone))?.kind, 'reject');
    const bad = await viaList('dkim=fail header.d=example.org; dmarc=fail header.from=example.org');
    assert.equal(refusal(await run(bad, zone, { config: { arc: { trusted_sealers: ['lists.example.net'] } } }))?.kind, 'reject');
  });

  test('a broken chain (the sealed message changed afterwards) is ARC_FAIL and never overrides', async () => {
    const raw = await viaList('dmarc=pass header.from=example.org');
    const tampered = Buffer.from(raw.toString('latin1').replace('-- list footer', '-- evil footer'), 'latin1');
    const r = await run(tampered, zone, { config: { arc: { trusted_sealers: ['lists.example.net'] } } });
    assert.ok(names(r).includes('ARC_FAIL'), names(r).join());
    assert.equal(refusal(r)?.kind, 'reject');
  });
});
