// Bayes alone, measured: k-fold cross-validation over a labelled corpus (a tarball or folder whose
// paths say "spam/" or "ham/"), in memory, with the same tokenizer and arithmetic as the
// gateway. Small on purpose: the cross-engine evaluation is bench/spam-eval.mjs.
//
//   node dist/src/cli/bayes-evaluate.js ../shared/corpus/sa2002-dev.tar.gz [--folds 5 | --odd-even] [--json]
//
// Folds are deterministic: message i (in the reader's sorted order) goes to fold i mod k, so
// each class is spread evenly and a rerun gives the same table. --odd-even trains on the odd
// file numbers and tests on the even ones (SpamAssassin's published split), then the reverse.
import { parseMessage } from '../mime/text.js';
import { readMessages } from './corpus/read.js';
import { tokenize, type TokenizeOptions } from '../checks/bayes/tokenize.js';
import { combineTokens, bayesSymbols, BANDS, DEFAULT_PARAMS, type ClassifierParams, type TokenCount } from '../checks/bayes/classifier.js';

export interface LabelledTokens {
  readonly name: string;
  readonly spam: boolean;
  readonly tokens: readonly string[];
}

/** Reads and tokenizes a labelled corpus; a message's label comes from a "spam"/"ham" path part. */
export async function loadLabelled(input: string, opts: TokenizeOptions = {}): Promise<LabelledTokens[]> {
  const out: LabelledTokens[] = [];
  for await (const m of readMessages(input)) {
    const label = /(^|[/:])(spam|ham)\//i.exec(m.name)?.[2]?.toLowerCase();
    if (!label) continue;
    out.push({ name: m.name, spam: label === 'spam', tokens: tokenize(parseMessage(m.raw), opts) });
  }
  return out;
}

export interface Scored {
  readonly name: string;
  readonly spam: boolean;
  readonly probability: number;
}

/** Trains on `train`, scores `test`, all in memory. */
export function trainAndScore(train: readonly LabelledTokens[], test: readonly LabelledTokens[], params: ClassifierParams = DEFAULT_PARAMS): Scored[] {
  const counts = new Map<string, { spam: number; ham: number }>();
  let nspam = 0;
  let nham = 0;
  for (const m of train) {
    if (m.spam) nspam++;
    else nham++;
    for (const t of m.tokens) {
      let c = counts.get(t);
      if (!c) counts.set(t, (c = { spam: 0, ham: 0 }));
      if (m.spam) c.spam++;
      else c.ham++;
    }
  }
  const totals = { spam: nspam, ham: nham };
  return test.map((m) => {
    const found: (TokenCount | undefined)[] = m.tokens.map((t) => counts.get(t));
    return { name: m.name, spam: m.spam, probability: combineTokens(found, totals, params).probability };
  });
}

export function crossValidate(all: readonly LabelledTokens[], folds = 5, params: ClassifierParams = DEFAULT_PARAMS): Scored[] {
  const out: Scored[] = [];
  for (let f = 0; f < folds; f++) {
    const train = all.filter((_, i) => i % folds !== f);
    const test = all.filter((_, i) => i % folds === f);
    out.push(...trainAndScore(train, test, params));
  }
  return out;
}

/** Train on odd-numbered files, test on even, and the reverse; both halves scored. */
export function oddEven(all: readonly LabelledTokens[], params: ClassifierParams = DEFAULT_PARAMS): { evenTested: Scored[]; oddTested: Scored[] } {
  const odd = (m: LabelledTokens) => Number(/(\d+)\.[a-z]+$/i.exec(m.name)?.[1] ?? 0) % 2 === 1;
  return {
    evenTested: trainAndScore(all.filter(odd), all.filter((m) => !odd(m)), params),
    oddTested: trainAndScore(all.filter((m) => !odd(m)), all.filter(odd), params),
  };
}

export interface CutRow {
  /** Messages with probability ≥ cut are called spam. */
  readonly cut: number;
  readonly symbol: string;
  readonly spamRecall: number;
  readonly hamFpRate: number;
  readonly precision: number;
  readonly f1: number;
  readonly falsePositives: number;
  readonly caughtSpam: number;
}

/** Recall, false-positive rate and F1 when everything from each band's lower bound up is spam. */
export function cutTable(scored: readonly Scored[]): CutRow[] {
  const spam = scored.filter((s) => s.spam);
  const ham = scored.filter((s) => !s.spam);
  const cuts: [number, string][] = [[0.999, 'BAYES_999'], ...BANDS.filter(([lo]) => lo > 0).map(([lo, n]) => [lo, n] as [number, string])];
  return cuts.map(([cut, symbol]) => {
    const tp = spam.filter((s) => s.probability >= cut).length;
    const fp = ham.filter((s) => s.probability >= cut).length;
    const recall = spam.length ? tp / spam.length : 0;
    const precision = tp + fp ? tp / (tp + fp) : 1;
    return {
      cut, symbol, spamRecall: recall, hamFpRate: ham.length ? fp / ham.length : 0, precision,
      f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0, falsePositives: fp, caughtSpam: tp,
    };
  });
}

/** How many spam and ham messages land in each band (for weights). */
export function bandCounts(scored: readonly Scored[]): Record<string, { spam: number; ham: number }> {
  const out: Record<string, { spam: number; ham: number }> = {};
  for (const s of scored) {
    for (const sym of bayesSymbols(s.probability)) {
      const r = (out[sym] ??= { spam: 0, ham: 0 });
      if (s.spam) r.spam++;
      else r.ham++;
    }
  }
  return out;
}

export function formatTable(rows: readonly CutRow[], bands: Record<string, { spam: number; ham: number }>): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`;
  const lines = ['| spam if ≥ | symbol | spam recall | ham FP rate (n) | precision | F1 |', '|---|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.cut} | ${r.symbol} | ${pct(r.spamRecall)} | ${pct(r.hamFpRate)} (${r.falsePositives}) | ${pct(r.precision)} | ${r.f1.toFixed(4)} |`);
  lines.push('', '| band | spam | ham |', '|---|---|---|');
  for (const [, name] of [[1, 'BAYES_999'], ...BANDS] as const) {
    const b = bands[name] ?? { spam: 0, ham: 0 };
    lines.push(`| ${name} | ${b.spam} | ${b.ham} |`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const input = argv.find((a) => !a.startsWith('--'));
  if (!input) {
    console.error('usage: node dist/src/cli/bayes-evaluate.js CORPUS [--folds K | --odd-even] [--json] [--s S] [--x X] [--min-strength M] [--max-tokens N]');
    return 2;
  }
  const num = (flag: string, dflt: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const params: ClassifierParams = {
    s: num('--s', DEFAULT_PARAMS.s), x: num('--x', DEFAULT_PARAMS.x),
    minStrength: num('--min-strength', DEFAULT_PARAMS.minStrength), maxTokens: num('--max-tokens', DEFAULT_PARAMS.maxTokens),
  };
  const all = await loadLabelled(input);
  if (argv.includes('--odd-even')) {
    const { evenTested, oddTested } = oddEven(all, params);
    for (const [title, sc] of [['train odd, test even', evenTested], ['train even, test odd', oddTested]] as const) {
      console.log(`${title} (${sc.length} tested)\n\n${formatTable(cutTable(sc), bandCounts(sc))}\n`);
    }
    return 0;
  }
  const scored = crossValidate(all, num('--folds', 5), params);
  const rows = cutTable(scored);
  const bands = bandCounts(scored);
  if (argv.includes('--json')) console.log(JSON.stringify({ params, messages: all.length, rows, bands }, null, 2));
  else console.log(`${all.length} messages, params ${JSON.stringify(params)}\n\n${formatTable(rows, bands)}`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
}
