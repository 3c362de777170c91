import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusal } from '../test-support.js';
import type { ConnectionFacts } from '../types.js';
import { formatReply } from '../../protocol/reply.js';
import { spfCheck, spfChecks, spfHeloCheck, type SpfConfig } from './spf-check.js';
import { memoryResolver, type MemoryZone } from './memory-resolver.js';

const ZONE: MemoryZone = {
  'example.org': { TXT: [['v=spf1 ip4:192.0.2.0/24 exp=why.example.org -all']] },
  'why.example.org': { TXT: [['%{i} is not a mail server of %{d}']] },
  'soft.example.org': { TXT: [['v=spf1 ip4:192.0.2.0/24 ~all']] },
  'mail.example.net': { TXT: [['v=spf1 a -all']], A: ['198.51.100.25'] },
  'broken.example.org': { TXT: [['v=spf1 ip4:192.0.2.0/24 -all moo']] },
  'include.example.org': { TXT: [['v=spf1 include:down.example.net -all']] },
  'down.example.net': 'servfail',
  'slow.example.org': 'hang',
  'v6.example.org': { TXT: [['v=spf1 ip6:2001:db8::/32 -all']] },
};

// What a fail does is policy.actions' (SPF_FAIL: reject by default), not the check's configuration.
const REJECT: SpfConfig = { enabled: true, helo: true };
const SCORE = REJECT;

function conn(over: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    sessionId: 's1', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.7', remotePort: 40000,
    localAddress: '127.0.0.1', localPort: 25, trustedNetwork: false, helo: 'mail.example.net', esmtp: true, ...over,
  };
}

test('pass: symbol, Authentication-Results, Received-SPF, no demand', async () => {
  const check = spfCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT });
  assert.equal(check.stage, 'mail');
  const out = await check.run({ conn: conn(), sender: 'alice@example.org' });
  assert.equal(out.symbols?.length, 1);
  assert.equal(out.symbols![0]!.name, 'SPF_PASS');
  assert.match(out.symbols![0]!.reason, /example\.org permits 192\.0\.2\.7: "ip4:192\.0\.2\.0\/24" in the record of example\.org/);
  assert.deepEqual(out.authResults, ['spf=pass smtp.mailfrom=example.org']);
  assert.deepEqual(out.trace, [
    'Received-SPF: pass (mx.gateway.test: domain of alice@example.org designates 192.0.2.7 as permitted sender) ' +
    'client-ip=192.0.2.7; envelope-from="alice@example.org"; helo=mail.example.net; receiver=mx.gateway.test; ' +
    'identity=mailfrom; mechanism="ip4:192.0.2.0/24";',
  ]);
  assert.equal(refusal(out), undefined);
});

test('fail: SPF_FAIL carries 550 5.7.23 with the domain\'s explanation, sent under the default action; the result is a fact', async () => {
  const check = spfCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT });
  const out = await check.run({ conn: conn({ remoteAddress: '203.0.113.9' }), sender: 'alice@example.org' });
  assert.equal(out.symbols![0]!.name, 'SPF_FAIL');
  assert.match(out.symbols![0]!.reason, /"-all" in the record of example\.org; explanation: 203\.0\.113\.9 is not a mail server of example\.org/);
  assert.equal(refusal(out)?.kind, 'reject');
  assert.equal(formatReply(refusal(out)!.reply),
    '550 5.7.23 Error: SPF check failed for <alice@example.org> from 203.0.113.9: 203.0.113.9 is not a mail server of example.org\r\n');
  assert.deepEqual(out.facts, { spf: { result: 'fail', domain: 'example.org' } });
  assert.deepEqual(out.authResults, ['spf=fail smtp.mailfrom=example.org']);
  assert.match(out.trace![0]!, /^Received-SPF: fail \(mx\.gateway\.test: domain of alice@example\.org does not designate 203\.0\.113\.9 as permitted sender\) .* mechanism=-all;$/);
});

test('fail under SPF_FAIL: score (was fail_action: score), softfail, none, permerror: symbols only', async () => {
  const resolver = memoryResolver(ZONE);
  const check = spfCheck({ resolver, hostname: 'mx.gateway.test', config: SCORE });
  const c = conn({ remoteAddress: '203.0.113.9' });
  const fail = await check.run({ conn: c, sender: 'alice@example.org' });
  assert.equal(fail.symbols![0]!.name, 'SPF_FAIL');
  assert.equal(refusal(fail, { stage: 'mail', actions: { SPF_FAIL: 'score' } }), undefined);
  const soft = await check.run({ conn: c, sender: 'bob@soft.example.org' });
  assert.equal(soft.symbols![0]!.name, 'SPF_SOFTFAIL');
  assert.equal(refusal(soft), undefined);
  const none = await check.run({ conn: c, sender: 'carol@nothing.example' });
  assert.equal(none.symbols![0]!.name, 'SPF_NONE');
  assert.deepEqual(none.authResults, ['spf=none smtp.mailfrom=nothing.example']);
  const perm = await spfCheck({ resolver, hostname: 'mx.gateway.test', config: REJECT }).run({ conn: c, sender: 'dan@broken.example.org' });
  assert.equal(perm.symbols![0]!.name, 'SPF_PERMERROR');
  assert.match(perm.symbols![0]!.reason, /syntax error in the SPF record of broken\.example\.org: unknown mechanism "moo"/);
  assert.equal(refusal(perm), undefined, 'only "fail" is refused');
  assert.match(perm.trace![0]!, /problem="syntax error in the SPF record of broken\.example\.org: unknown mechanism \\"moo\\"";$/);
});

test('a DNS failure inside an include is a temperror that names the lookup', async () => {
  const out = await spfCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT })
    .run({ conn: conn(), sender: 'x@include.example.org' });
  assert.equal(out.symbols![0]!.name, 'SPF_TEMPERROR');
  assert.match(out.symbols![0]!.reason, /DNS error \(ESERVFAIL\) looking up TXT down\.example\.net/);
  assert.equal(refusal(out), undefined);
});

test('the time budget ends a hanging evaluation in temperror', async () => {
  const check = spfCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT, options: { budgetMs: 150 } });
  assert.ok(check.timeoutMs! > 150, 'the runner\'s backstop is later than our own budget');
  const started = Date.now();
  const out = await check.run({ conn: conn(), sender: 'x@slow.example.org' });
  const took = Date.now() - started;
  assert.equal(out.symbols![0]!.name, 'SPF_TEMPERROR');
  assert.match(out.symbols![0]!.reason, /time budget/);
  assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
});

test('the null sender checks the HELO identity, and its fail is refused too', async () => {
  const check = spfCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT });
  const pass = await check.run({ conn: conn({ remoteAddress: '198.51.100.25' }), sender: '' });
  assert.equal(pass.symbols![0]!.name, 'SPF_PASS');
  assert.deepEqual(pass.authResults, ['spf=pass smtp.helo=mail.example.net']);
  assert.match(pass.trace![0]!, /envelope-from="postmaster@mail\.example\.net"; helo=mail\.example\.net; .* identity=helo; mechanism=a;$/);
  const fail = await check.run({ conn: conn(), sender: '' });
  assert.equal(fail.symbols![0]!.name, 'SPF_FAIL');
  assert.equal(refusal(fail)?.kind, 'reject');
  assert.match(refusal(fail)!.reply.text, /^Error: SPF check failed for <> \(HELO mail\.example\.net\) from 192\.0\.2\.7: /);
});

test('spf_helo: its own symbols, scored only, not for the null sender', async () => {
  const check = spfHeloCheck({ resolver: memoryResolver(ZONE), hostname: 'mx.gateway.test', config: REJECT });
  const fail = await check.run({ conn: conn(), sender: 'alice@example.org' });
  assert.equal(fail.symbols![0]!.name, 'SPF_HELO_FAIL');
  assert.equal(refusal(fail), undefined, 'a HELO fail is never refused on its own');
  assert.deepEqual(fail.authResults, ['spf=fail smtp.helo=mail.example.net']);
  const pass = await check.run({ conn: conn({ remoteAddress: '198.51.100.25' }), sender: 'alice@example.org' });
  assert.equal(pass.symbols![0]!.name, 'SPF_HELO_PASS');
  const literal = await check.run({ conn: conn({ helo: '[192.0.2.7]' }), sender: 'alice@example.org' });
  assert.equal(literal.symbols![0]!.name, 'SPF_HELO_NONE');
  assert.deepEqual(literal.authResults, ['spf=none smtp.helo="[192.0.2.7]"']);
  assert.deepEqual(await check.run({ conn: conn(), sender: '' }), {});
});

test('authenticated users and trusted networks are not checked (no DNS at all)', async () => {
  const resolver = memoryResolver(ZONE);
  for (const check of spfChecks({ resolver, hostname: 'mx.gateway.test', config: REJECT })) {
    assert.deepEqual(await check.run({ conn: conn({ authUser: 'alice@example.org' }), sender: 'alice@example.org' }), {});
    assert.deepEqual(await check.run({ conn: conn({ trustedNetwork: true }), sender: 'alice@example.org' }), {});
  }
  assert.deepEqual(resolver.asked, []);
});

test('configuration: disabled, HELO check off', () => {
  const resolver = memoryResolver(ZONE);
  assert.deepEqual(spfChecks({ resolver, hostname: 'h', config: { ...REJECT, enabled: false } }), []);
  assert.deepEqual(spfChecks({ resolver, hostname: 'h', config: { ...REJECT, helo: false } }).map((c) => c.name), ['spf']);
  assert.deepEqual(spfChecks({ resolver, hostname: 'h', config: REJECT }).map((c) => c.name), ['spf', 'spf_helo']);
});

test('header and reply text stay clean whatever the client or DNS send', async () => {
  const zone: MemoryZone = {
    ...ZONE,
    'evil.example.org': { TXT: [['v=spf1 exp=evil-exp.example.org -all']] },
    'evil-exp.example.org': { TXT: [['line one\r\n250 fake']] },
  };
  const check = spfCheck({ resolver: memoryResolver(zone), hostname: 'mx.gateway.test', config: REJECT });
  const out = await check.run({ conn: conn({ helo: 'bad"helo\\(x)' }), sender: 'x@evil.example.org' });
  assert.equal(out.symbols![0]!.name, 'SPF_FAIL');
  assert.doesNotMatch(refusal(out)!.reply.text, /[\r\n]/);
  assert.match(refusal(out)!.reply.text, /evil\.example\.org does not designate 192\.0\.2\.7 as a permitted sender$/, 'a non-ASCII/CRLF explanation is ignored');
  assert.doesNotMatch(out.trace![0]!, /[\r\n]/);
  assert.match(out.trace![0]!, / helo="bad\\"helo\\\\\(x\)";/);
  const v6 = await check.run({ conn: conn({ remoteAddress: '2001:db8::25' }), sender: 'x@v6.example.org' });
  assert.equal(v6.symbols![0]!.name, 'SPF_PASS');
  assert.match(v6.trace![0]!, /client-ip="2001:db8::25";/);
  const mapped = await check.run({ conn: conn({ remoteAddress: '::ffff:192.0.2.7' }), sender: 'x@example.org' });
  assert.equal(mapped.symbols![0]!.name, 'SPF_PASS', 'an IPv4-mapped address is IPv4');
});
