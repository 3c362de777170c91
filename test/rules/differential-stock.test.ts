// Differential test with SpamAssassin's own stock rules (/usr/share/spamassassin): every
// regex rule we run (about 1,100 header, body, rawbody, full and uri rules, after ReplaceTags)
// must hit on the same messages as in the real SpamAssassin, over a corpus sample. Metas and
// eval: rules are left out of the comparison (eval: rules do not run here, and metas use them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parseMessage } from '../../src/mime/text.js';
import { loadRules, RuleEngine, messageUris } from '../../src/checks/rules/index.js';
import { extractCorpus, sample } from './corpus.js';
import { diffMessages, findSpamassassin, runSpamassassin } from './spamassassin.js';

const STOCK = '/usr/share/spamassassin';

/**
 * Known differences (docs/rules.md): text the HTML hides from the reader (tiny or white fonts,
 * display:none) is not in our "body" (src/mime/text.ts renders what a reader sees), while
 * SpamAssassin's "body" keeps it. Rule → message ids (found over a wider 100-message run;
 * they stay listed in case the sample changes).
 */
const KNOWN: Record<string, string[]> = {
  TRACKER_ID: ['spam/0161.eml'], // the tracking token shares a paragraph with hidden text there
  LOW_PRICE: ['spam/0251.eml'], // "low price" in hidden text
  NO_PRESCRIPTION: ['spam/0421.eml'], // "NO Prescription" in hidden text
};

test('the stock SpamAssassin regex rules hit the same messages here and in SpamAssassin', { timeout: 150_000 }, async (t) => {
  const sa = findSpamassassin();
  const corpus = extractCorpus();
  if (!sa || !corpus || !fs.existsSync(STOCK)) {
    if (process.env.PORTCULLIS_TEST_STRICT === '1') assert.fail('missing spamassassin, its rules or the dev corpus');
    t.skip('spamassassin, its rules or the dev corpus missing');
    corpus?.remove();
    return;
  }
  try {
    const messages = diffMessages(sample(corpus, 20, 125).map(([label, name]) => ({ id: `${label}/${name}`, file: corpus.path(label, name) })));
    assert.ok(messages.length >= 40, `sample of ${messages.length}`);
    // Score set 0 is what SpamAssassin uses with network tests and Bayes off.
    const loaded = loadRules([STOCK], { scoreSet: 0 });
    const regexRules = new Set(loaded.ruleset.rules.filter((r) => (loaded.ruleset.scores[r.name] ?? 0) !== 0).map((r) => r.name));
    const engine = new RuleEngine(loaded.ruleset, { timeBudgetMs: 10_000, maxBytes: 1 << 20 });
    const saHits = runSpamassassin(sa, messages, undefined, 120_000);
    assert.equal(saHits.size, messages.length, 'SpamAssassin reported on every message');
    const diffs: string[] = [];
    let agreed = 0;
    try {
      for (const m of messages) {
        const parsed = parseMessage(m.raw);
        const ours = new Set((await engine.scan(parsed, messageUris(parsed))).hits.map((h) => h.name).filter((n) => regexRules.has(n)));
        const theirs = new Set(saHits.get(m.id)!.filter((n) => regexRules.has(n)));
        for (const n of ours) if (!theirs.has(n) && !KNOWN[n]?.includes(m.id)) diffs.push(`${m.id}: ${n} only here`);
        for (const n of theirs) if (!ours.has(n) && !KNOWN[n]?.includes(m.id)) diffs.push(`${m.id}: ${n} only in SpamAssassin`);
        for (const n of ours) if (theirs.has(n)) agreed++;
      }
    } finally {
      await engine.close();
    }
    t.diagnostic(`${messages.length} messages, ${regexRules.size} scored regex rules compared, ${agreed} hits in both`);
    assert.ok(agreed >= 30, 'the comparison saw real hits');
    assert.deepEqual(diffs, []);
  } finally {
    corpus.remove();
  }
});
