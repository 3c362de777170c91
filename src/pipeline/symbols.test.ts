// The registry held to conf/scores.yaml both ways, the actions layer, the weight precedence and
// the mapping of the old per-check action keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shippedWeights, Weigher } from './weights.js';
import { ActionTable, validatePolicy } from './actions.js';
import { SymbolRegistry } from '../checks/registry.js';
import { testRegistry } from '../checks/test-support.js';
import { buildConfig, ConfigError } from '../config/load.js';
import { reply } from '../protocol/reply.js';

test('conf/scores.yaml and the registry agree both ways', () => {
  const shipped = shippedWeights();
  const registry = testRegistry();
  const fixed = registry.all().filter((s) => s.weightFrom === 'scores.yaml');
  assert.deepEqual(fixed.filter((s) => !shipped.has(s.name)).map((s) => s.name), [], 'declared symbols without a shipped weight');
  assert.deepEqual([...shipped.keys()].filter((n) => !registry.has(n)), [], 'weights in scores.yaml no check declares');
});

test('weights: policy.symbols > the check\'s configured weight > the registry default', () => {
  const registry = new SymbolRegistry([{ name: 'DNSBL_X', group: 'dnsbl', description: 'x', weight: 2 }, { name: 'SPF_FAIL', group: 'spf', description: 'f' }], new Map([['SPF_FAIL', 5]]));
  assert.equal(new Weigher(registry).weigh({ name: 'SPF_FAIL', reason: '' }), 5);
  assert.equal(new Weigher(registry).weigh({ name: 'DNSBL_X', reason: '', score: 3 }), 3);
  assert.equal(new Weigher(registry, { DNSBL_X: 0, SPF_FAIL: 1 }).weigh({ name: 'DNSBL_X', reason: '', score: 3 }), 0);
  assert.equal(new Weigher(registry, { SPF_FAIL: 1 }).weigh({ name: 'SPF_FAIL', reason: '' }), 1);
});

test('actions: name > longest glob > group > default; observe holds back policy, never safety', () => {
  const registry = testRegistry();
  const t = new ActionTable(registry, { 'SPF_*': 'junk', 'SPF_HELO_*': 'tag', 'group:dmarc': 'score', SPF_SOFTFAIL: 'ignore' });
  assert.equal(t.of('SPF_FAIL'), 'junk');
  assert.equal(t.of('SPF_HELO_FAIL'), 'tag');
  assert.equal(t.of('SPF_SOFTFAIL'), 'ignore');
  assert.equal(t.of('DMARC_REJECT'), 'score');
  assert.equal(t.of('AV_VIRUS'), 'reject');
  const r = reply(550, '5.7.23', 'Error: SPF check failed');
  const d = new ActionTable(registry);
  const out = d.apply('mail', [{ name: 'SPF_FAIL', reason: '', score: 5, reply: r }], true);
  assert.equal(out.demand, undefined);
  assert.deepEqual(out.wouldRefuse, [{ kind: 'reject', reply: r, symbol: 'SPF_FAIL' }]);
  assert.deepEqual(d.apply('mail', [{ name: 'SPF_FAIL', reason: '', score: 5, reply: r }], false).demand, { kind: 'reject', reply: r, symbol: 'SPF_FAIL' });
  const own = reply(553, '5.7.1', 'not yours');
  assert.equal(d.apply('data', [{ name: 'FROM_NOT_OWNED', reason: '', score: 0, reply: own }], true).demand?.reply, own);
  assert.equal(d.apply('data', [{ name: 'DMARC_QUARANTINE', reason: '', score: 4 }], false).floor, 'junk');
});

test('globs and groups never give a failure symbol (*_TEMPFAIL, *_TIMEOUT) their action; a name does', () => {
  const registry = testRegistry();
  const t = new ActionTable(registry, { 'DNSBL_*': 'junk', 'group:attachments': 'reject' });
  assert.equal(t.of('DNSBL_LISTED'), 'junk');
  assert.equal(t.of('DNSBL_TEMPFAIL'), 'score', 'a DNS timeout must not junk the message');
  assert.equal(t.of('MIME_SCAN_TIMEOUT'), 'tempfail', 'the declared action stays');
  assert.equal(new ActionTable(registry, { DNSBL_TEMPFAIL: 'junk' }).of('DNSBL_TEMPFAIL'), 'junk');
  const problems = validatePolicy({ symbols: {}, actions: { '*_TEMPFAIL': 'junk' } }, registry);
  assert.match(problems[0] ?? '', /the glob matches no symbol \(failure symbols/);
});

test('an unknown symbol, group or empty glob is refused with its key', () => {
  const problems = validatePolicy({ symbols: { SPF_FIAL: 1 }, actions: { 'NOPE_*': 'reject', 'group:virus': 'tag', FROM_NOT_OWNED: 'score' } }, testRegistry());
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems[0]!, /^policy\.symbols\.SPF_FIAL: unknown symbol/);
  assert.match(problems[1]!, /^policy\.actions\."NOPE_\*": the glob matches no symbol/);
  assert.match(problems[2]!, /^policy\.actions\."group:virus": unknown group/);
  assert.match(problems[3]!, /FROM_NOT_OWNED is protocol safety/);
});

test('the seven old keys keep their meaning through policy.actions, with a warning showing the new form', () => {
  const c = buildConfig({
    dnsbl: { action: 'score' }, spf: { fail_action: 'score' }, greeting: { early_talker: 'score' }, antivirus: { on_failure: 'tag' },
    authentication: { dmarc: { enforce: 'junk' } }, archives: { executable_inside: 'reject', encrypted: 'reject' }, attachments: { on_unscannable: 'accept' },
  });
  assert.deepEqual({ ...c.policy.actions }, {
    DNSBL_LISTED: 'score', SPF_FAIL: 'score', EARLY_TALKER: 'score', AV_UNAVAILABLE: 'tag', DMARC_REJECT: 'junk',
    ARCHIVE_EXE: 'reject', ARCHIVE_ENCRYPTED: 'reject', MIME_UNSCANNABLE: 'score', MIME_SCAN_TIMEOUT: 'score',
  });
  assert.equal(c.archives.executable_inside, 'score');
  assert.equal(c.warnings.length, 8);
  assert.match(c.warnings[1]!, /^spf\.fail_action: score is deprecated; it means policy: \{ actions: \{ SPF_FAIL: score \} \}/);
  assert.throws(() => buildConfig({ spf: { fail_action: 'maybe' } }), (e: unknown) => e instanceof ConfigError && /spf\.fail_action: this key moved to policy\.actions.*reject → policy: \{ actions: \{ SPF_FAIL: reject \} \}/.test(e.message));
  assert.throws(() => buildConfig({ spf: { fail_action: 'score' }, policy: { actions: { SPF_FAIL: 'reject' } } }), /policy\.actions\.SPF_FAIL: reject contradicts/);
  assert.throws(() => buildConfig({ archives: { encrypted: 'drop' } }), (e: unknown) => e instanceof ConfigError && /archives\.encrypted: "drop" is not one of score, strip; refusing moved to policy\.actions \(reject → policy: \{ actions: \{ ARCHIVE_ENCRYPTED: reject \} \}\)/.test(e.message));
  assert.equal(buildConfig({ archives: { encrypted: 'strip' } }).archives.encrypted, 'strip');
});
