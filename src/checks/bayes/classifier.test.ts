import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chi2Q, fisherCombine, tokenProbability, combineTokens, bayesSymbols, DEFAULT_PARAMS } from './classifier.js';

const close = (a: number, b: number, rel = 1e-6) => assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-300), `${a} ≠ ${b}`);

test('chi2Q matches the chi-square upper tail (tables, and log-space values far in the tail)', () => {
  close(chi2Q(2, 2), Math.exp(-1));
  close(chi2Q(9.4877, 4), 0.0500005995, 1e-6); // 5 % point, 4 d.o.f.
  close(chi2Q(18.307, 10), 0.0500005891, 1e-6); // 5 % point, 10 d.o.f.
  close(chi2Q(3.94, 10), 0.9500130908, 1e-6); // 95 % point, 10 d.o.f.
  close(chi2Q(300, 300), 0.4891417702506134, 1e-9);
  close(chi2Q(100, 2), 1.9287498479639178e-22, 1e-9);
  // A naive e^−m Σ… underflows to 0 here (e^−750); the true value is ~9e-127.
  close(chi2Q(1500, 400), 8.997002253667448e-127, 1e-6);
  assert.equal(chi2Q(0, 10), 1);
  assert.throws(() => chi2Q(3, 3), /even/);
});

test('Fisher combining: I = (1 + S − H) / 2 on known inputs', () => {
  // One token at p: H = 1 − chi2Q(−2 ln p, 2) = 1 − p, S = 1 − (1 − p) = p → I = p.
  close(fisherCombine([0.9]).probability, 0.9, 1e-9);
  close(fisherCombine([0.2]).probability, 0.2, 1e-9);
  // Two tokens 0.99 and 0.99: S = 1 − chi2Q(−2·2·ln 0.01, 4), H = 1 − chi2Q(−2·2·ln 0.99, 4).
  const r = fisherCombine([0.99, 0.99]);
  const s = 1 - Math.exp(-(-2 * Math.log(0.01))) * (1 + -2 * Math.log(0.01));
  const h = 1 - Math.exp(-(-2 * Math.log(0.99))) * (1 + -2 * Math.log(0.99));
  close(r.spamminess, s, 1e-9);
  close(r.hamminess, h, 1e-9);
  close(r.probability, (1 + s - h) / 2, 1e-9);
  // Mixed strong evidence is "unsure", near 0.5; symmetric inputs give exactly 0.5.
  close(fisherCombine([0.99, 0.01]).probability, 0.5, 1e-9);
  assert.equal(fisherCombine([]).probability, 0.5);
  // Many strong spam tokens: probability → 1 without NaN.
  const many = fisherCombine(Array(200).fill(0.999));
  assert.ok(many.probability > 0.999 && many.probability <= 1);
});

test('Robinson f(w): unseen → x, frequent → the observed ratio, ratios use class totals', () => {
  const p = DEFAULT_PARAMS;
  assert.equal(tokenProbability({ spam: 0, ham: 0 }, { spam: 100, ham: 100 }, p), p.x);
  // Seen once in spam only: (s·x + 1·1) / (s + 1).
  close(tokenProbability({ spam: 1, ham: 0 }, { spam: 100, ham: 100 }, p), (p.s * p.x + 1) / (p.s + 1));
  // 10 spam of 100 vs 10 ham of 1000: p(w) = 0.1 / (0.1 + 0.01).
  const pw = 0.1 / 0.11;
  close(tokenProbability({ spam: 10, ham: 10 }, { spam: 100, ham: 1000 }, p), (p.s * p.x + 20 * pw) / (p.s + 20));
  // Counts above the totals (after expiry trimmed the totals' messages) are clamped.
  assert.ok(tokenProbability({ spam: 500, ham: 0 }, { spam: 100, ham: 100 }, p) < 1);
});

test('combineTokens keeps the strongest maxTokens beyond minStrength, deterministic on ties', () => {
  const totals = { spam: 100, ham: 100 };
  const counts = [
    { spam: 50, ham: 0 }, undefined, { spam: 10, ham: 10 } /* 0.5: never used */, { spam: 0, ham: 80 }, { spam: 50, ham: 0 },
  ];
  const r = combineTokens(counts, totals, { ...DEFAULT_PARAMS, maxTokens: 2 });
  assert.deepEqual(r.clues.map((c) => c.index), [3, 0]);
  const all = combineTokens(counts, totals, DEFAULT_PARAMS);
  assert.deepEqual(all.clues.map((c) => c.index), [3, 0, 4]);
});

test('BAYES_xx bands as SpamAssassin draws them, BAYES_999 together with BAYES_99', () => {
  assert.deepEqual(bayesSymbols(0), ['BAYES_00']);
  assert.deepEqual(bayesSymbols(0.0099), ['BAYES_00']);
  assert.deepEqual(bayesSymbols(0.01), ['BAYES_05']);
  assert.deepEqual(bayesSymbols(0.1), ['BAYES_20']);
  assert.deepEqual(bayesSymbols(0.3), ['BAYES_40']);
  assert.deepEqual(bayesSymbols(0.5), ['BAYES_50']);
  assert.deepEqual(bayesSymbols(0.7), ['BAYES_60']);
  assert.deepEqual(bayesSymbols(0.9), ['BAYES_80']);
  assert.deepEqual(bayesSymbols(0.97), ['BAYES_95']);
  assert.deepEqual(bayesSymbols(0.995), ['BAYES_99']);
  assert.deepEqual(bayesSymbols(0.999), ['BAYES_99', 'BAYES_999']);
  assert.deepEqual(bayesSymbols(1), ['BAYES_99', 'BAYES_999']);
});
