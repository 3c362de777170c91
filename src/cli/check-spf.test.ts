import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainSpf, type ExplainConfig } from './check-spf.js';
import { memoryResolver, type MemoryZone } from '../checks/spf/memory-resolver.js';

const ZONE: MemoryZone = {
  'example.org': { TXT: [['v=spf1 include:_spf.example.net exp=why.example.org -all']] },
  '_spf.example.net': { TXT: [['v=spf1 ip4:192.0.2.0/24 ~all']] },
  'why.example.org': { TXT: [['%{i} may not send for %{d}']] },
  'mail.example.net': { TXT: [['v=spf1 a -all']], A: ['192.0.2.25'] },
};
const WEIGHTS = new Map([['SPF_PASS', -0.2], ['SPF_FAIL', 5], ['SPF_HELO_PASS', 0], ['SPF_HELO_FAIL', 2]]);
const config = (over: Partial<ExplainConfig['spf']> & { failAction?: 'score' } = {}, observe = false): ExplainConfig => ({
  spf: { enabled: true, helo: true, ...over },
  // SPF_FAIL's action is policy.actions' (was spf.fail_action).
  policy: { symbols: {}, observe, actions: over.failAction ? { SPF_FAIL: over.failAction } : {} },
  relay: { trusted_networks: ['10.0.0.0/8'] },
});
const input = (ip: string, sender = 'alice@example.org') => ({ ip, sender, helo: 'mail.example.net', hostname: 'mx.gateway.test' });

test('a fail under SPF_FAIL: reject (the default): records, deciding term, lookups, headers, the refusal', async () => {
  const { text, json } = await explainSpf(memoryResolver(ZONE), input('203.0.113.9'), config(), WEIGHTS);
  const mail = json.identities[0]!;
  assert.equal(mail.identity, 'mailfrom');
  assert.equal(mail.result, 'fail');
  assert.deepEqual(mail.records.map((r) => r.domain), ['example.org', '_spf.example.net']);
  assert.deepEqual(mail.decidedBy, { term: '-all', domain: 'example.org', redirectedFrom: [] });
  assert.equal(mail.explanation, '203.0.113.9 may not send for example.org');
  assert.equal(mail.lookups.count, 1, 'the include counts, the top record does not (RFC 7208 s4.6.4)');
  assert.equal(mail.action.kind, 'reject');
  assert.match(text, /MAIL FROM identity \(example\.org\): FAIL/);
  assert.match(text, /decided by: {3}"-all" in the record of example\.org/);
  assert.match(text, /DNS: {10}1 of 10 lookups, 0 of 2 void/);
  assert.match(text, /Received-SPF: fail \(mx\.gateway\.test: /);
  assert.match(text, /spf=fail smtp\.mailfrom=example\.org/);
  assert.match(text, /symbol: {7}SPF_FAIL \(weight 5\)/);
  assert.equal(json.refused, true);
  assert.match(text, /Gateway: refuses every recipient at RCPT \(except postmaster@ and abuse@\) with "550 5\.7\.23 Error: SPF check failed for <alice@example\.org> from 203\.0\.113\.9: 203\.0\.113\.9 may not send for example\.org"/);
  const helo = json.identities[1]!;
  assert.equal(helo.identity, 'helo');
  assert.equal(helo.result, 'fail');
  assert.equal(helo.action.kind, 'score', 'the HELO identity is only scored');
});

test('a pass through an include, and what fail_action score or observe mode change', async () => {
  const pass = await explainSpf(memoryResolver(ZONE), input('192.0.2.25'), config(), WEIGHTS);
  assert.equal(pass.json.identities[0]!.result, 'pass');
  assert.equal(pass.json.identities[0]!.decidedBy?.term, 'include:_spf.example.net');
  assert.match(pass.text, /Gateway: accepts as far as SPF goes and adds SPF_PASS \(-0\.2\), SPF_HELO_PASS \(\+0\)/);

  const scored = await explainSpf(memoryResolver(ZONE), input('203.0.113.9'), config({ failAction: 'score' }), WEIGHTS);
  assert.equal(scored.json.identities[0]!.action.kind, 'score');
  assert.match(scored.text, /adds SPF_FAIL \(\+5\), SPF_HELO_FAIL \(\+2\)/);

  const observed = await explainSpf(memoryResolver(ZONE), input('203.0.113.9'), config({}, true), WEIGHTS);
  assert.match(observed.text, /Gateway: observe mode: would refuse/);
  assert.equal(observed.json.refused, false);
  assert.equal(scored.json.refused, false);
});

test('null sender, disabled SPF, trusted networks; weights from conf/scores.yaml by default', async () => {
  const nul = await explainSpf(memoryResolver(ZONE), input('192.0.2.25', '<>'), config());
  assert.equal(nul.json.identities.length, 1, 'the HELO identity is the MAIL FROM identity then');
  assert.equal(nul.json.identities[0]!.identity, 'helo');
  assert.equal(nul.json.identities[0]!.authenticationResults, 'spf=pass smtp.helo=mail.example.net');
  assert.equal(typeof nul.json.identities[0]!.symbol.weight, 'number', 'the shipped weights are loaded');

  const off = await explainSpf(memoryResolver(ZONE), input('203.0.113.9'), config({ enabled: false }), WEIGHTS);
  assert.match(off.json.decision, /disabled/);
  const trusted = await explainSpf(memoryResolver(ZONE), input('10.1.2.3'), config(), WEIGHTS);
  assert.equal(trusted.json.trustedNetwork, true);
  assert.equal(trusted.json.refused, false);
  assert.match(trusted.text, /trusted_networks: the gateway skips SPF/);
});
