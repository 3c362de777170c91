// The arithmetic of the Bayes filter, apart from storage so it can be tested and measured on
// in-memory counts: Gary Robinson's f(w) per token and Fisher's chi-square combining of the
// most significant ones, as SpamBayes and SpamAssassin (since 2.60) do it.
//
// f(w) = (s·x + n·p(w)) / (s + n), where p(w) = spamratio / (spamratio + hamratio) with each
// ratio the token's count over the messages learned of that class, and n the messages the token
// was seen in: a rare token stays near x, a frequent one reaches its observed p(w).
// Combining (Robinson/Fisher): H = C⁻¹(−2 Σ ln f(w), 2N) and S = C⁻¹(−2 Σ ln (1 − f(w)), 2N),
// where C⁻¹ is the inverse chi-square (the upper tail, chi2Q); S near 1 means the spammy tokens
// are too strong to be chance, H likewise for the hammy ones, and I = (1 + S − H) / 2.
// Both S and H can be high at once (mixed evidence): I is then near 0.5, "unsure".

export interface ClassifierParams {
  /** Robinson's s: the strength of the prior x against the data. */
  readonly s: number;
  /** Robinson's x: the probability of a token never seen. */
  readonly x: number;
  /** Tokens with |f(w) − 0.5| below this are ignored. */
  readonly minStrength: number;
  /** At most this many of the strongest tokens are combined. */
  readonly maxTokens: number;
}

/**
 * Chosen by 5-fold cross-validation on the development corpus (docs/bayes.md): SpamBayes'
 * s = 0.45 and x = 0.5; a minimum strength of 0.15 (SpamBayes 0.1, SpamAssassin 0.346) and
 * 200 tokens (SpamAssassin 150). SpamAssassin's own s = 0.03 ranked as well but crowded both
 * classes around 0.5, which fixed BAYES_xx bands cannot use.
 */
export const DEFAULT_PARAMS: ClassifierParams = { s: 0.45, x: 0.5, minStrength: 0.15, maxTokens: 200 };

export interface TokenCount {
  readonly spam: number;
  readonly ham: number;
}

export interface Totals {
  readonly spam: number;
  readonly ham: number;
}

/** Robinson's f(w). */
export function tokenProbability(c: TokenCount, totals: Totals, p: ClassifierParams): number {
  const spam = Math.min(c.spam, totals.spam);
  const ham = Math.min(c.ham, totals.ham);
  const n = spam + ham;
  if (n === 0) return p.x;
  const spamRatio = totals.spam ? spam / totals.spam : 0;
  const hamRatio = totals.ham ? ham / totals.ham : 0;
  const pw = spamRatio + hamRatio === 0 ? p.x : spamRatio / (spamRatio + hamRatio);
  return (p.s * p.x + n * pw) / (p.s + n);
}

/**
 * The upper tail of the chi-square distribution with `v` (even) degrees of freedom at `x2`:
 * for even v it is the Poisson sum e^−m Σ_{i<v/2} m^i / i! with m = x2/2, computed in log
 * space so a long list of strong tokens cannot underflow to a wrong 0.
 */
export function chi2Q(x2: number, v: number): number {
  if (!(x2 > 0)) return 1;
  if (v % 2 !== 0 || v <= 0) throw new RangeError(`chi2Q needs an even, positive degree of freedom (got ${v})`);
  const m = x2 / 2;
  const lnM = Math.log(m);
  let lnTerm = -m;
  let lnSum = lnTerm;
  for (let i = 1; i < v / 2; i++) {
    lnTerm += lnM - Math.log(i);
    lnSum = lnSum > lnTerm ? lnSum + Math.log1p(Math.exp(lnTerm - lnSum)) : lnTerm + Math.log1p(Math.exp(lnSum - lnTerm));
  }
  return Math.min(1, Math.exp(lnSum));
}

export interface Combined {
  /** I = (1 + S − H) / 2: the spam probability. */
  readonly probability: number;
  readonly spamminess: number;
  readonly hamminess: number;
}

/** Fisher/Robinson chi-square combining of token probabilities (each in (0, 1)). */
export function fisherCombine(probs: readonly number[]): Combined {
  if (!probs.length) return { probability: 0.5, spamminess: 0, hamminess: 0 };
  let lnP = 0;
  let ln1P = 0;
  for (const raw of probs) {
    // Clamped: a token at exactly 0 or 1 would make the logs infinite.
    const p = Math.min(1 - 1e-9, Math.max(1e-9, raw));
    lnP += Math.log(p);
    ln1P += Math.log(1 - p);
  }
  const v = 2 * probs.length;
  const spamminess = 1 - chi2Q(-2 * ln1P, v);
  const hamminess = 1 - chi2Q(-2 * lnP, v);
  return { probability: (1 + spamminess - hamminess) / 2, spamminess, hamminess };
}

export interface Clue {
  readonly index: number;
  readonly probability: number;
}

/** Picks the significant tokens (strongest first) and combines them. */
export function combineTokens(counts: readonly (TokenCount | undefined)[], totals: Totals, p: ClassifierParams): Combined & { clues: Clue[] } {
  const clues: Clue[] = [];
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (!c || c.spam + c.ham === 0) continue; // unseen: exactly x, never significant
    const probability = tokenProbability(c, totals, p);
    if (Math.abs(probability - 0.5) >= p.minStrength) clues.push({ index: i, probability });
  }
  // Ties broken by index, so the same message always gives the same answer.
  clues.sort((a, b) => Math.abs(b.probability - 0.5) - Math.abs(a.probability - 0.5) || a.index - b.index);
  const used = clues.slice(0, p.maxTokens);
  return { ...fisherCombine(used.map((c) => c.probability)), clues: used };
}

/** SpamAssassin's BAYES_xx bands: [lower bound, name], highest first. BAYES_999 also hits BAYES_99. */
export const BANDS: readonly (readonly [number, string])[] = [
  [0.99, 'BAYES_99'], [0.95, 'BAYES_95'], [0.8, 'BAYES_80'], [0.6, 'BAYES_60'], [0.4, 'BAYES_50'],
  [0.2, 'BAYES_40'], [0.05, 'BAYES_20'], [0.01, 'BAYES_05'], [0, 'BAYES_00'],
];

/** The symbols a probability hits: one band, plus BAYES_999 at ≥ 99.9 % (as in SpamAssassin). */
export function bayesSymbols(probability: number): string[] {
  const band = BANDS.find(([lo]) => probability >= lo)?.[1] ?? 'BAYES_00';
  return probability >= 0.999 ? [band, 'BAYES_999'] : [band];
}
