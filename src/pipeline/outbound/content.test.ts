import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outboundVerdict } from './content.js';
import { outboundContentConfigSchema } from './config.js';

const c = outboundContentConfigSchema.parse({});

test('a score at the junk threshold holds; a refusal by score becomes a hold, never a 554', () => {
  const low = outboundVerdict({ score: 5.9, actions: ['tag'], rejectAll: false, wouldReject: false }, c, 6, false);
  assert.equal(low.hold, undefined);
  const junk = outboundVerdict({ score: 6, actions: ['junk'], rejectAll: false, wouldReject: false }, c, 6, false);
  assert.equal(junk.hold?.reason, 'spam score 6 (hold at 6)');
  const rej = outboundVerdict({ score: 20, actions: ['reject', 'reject'], rejectAll: true, wouldReject: true }, c, 6, false);
  assert.equal(rej.verdict.rejectAll, false);
  assert.deepEqual(rej.verdict.actions, ['junk', 'junk']);
  assert.ok(rej.hold);
});

test('hold_score overrides the junk threshold; observe mode holds nothing but says what it would have held', () => {
  const c9 = outboundContentConfigSchema.parse({ hold_score: 9 });
  assert.equal(outboundVerdict({ score: 8, actions: ['junk'], rejectAll: false, wouldReject: false }, c9, 6, false).hold, undefined);
  const obs = outboundVerdict({ score: 12, actions: ['junk'], rejectAll: false, wouldReject: false }, c9, 6, true);
  assert.equal(obs.hold, undefined);
  assert.equal(obs.wouldHold?.reason, 'spam score 12 (hold at 9)');
});
