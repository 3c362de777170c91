// Differential test against the real SpamAssassin (Debian's `spamassassin`, local tests only):
// the same plain regex rules (header, body, rawbody, full, uri, meta) run by SpamAssassin and by
// our engine over a sample of the dev corpus must hit the same rules on every message.
//
// SpamAssassin runs once over an mbox of the sample (spamassassin.ts), with only our rule file
// and the TLD list (-C replaces the rules folder).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMessage } from '../../src/mime/text.js';
import { loadRulesText, RuleEngine, messageUris } from '../../src/checks/rules/index.js';
import { extractCorpus, sample } from './corpus.js';
import { diffMessages, findSpamassassin, runSpamassassin } from './spamassassin.js';

const RULES = String.raw`
header D_SUBJ_FREE     Subject =~ /\bfree\b/i
header D_SUBJ_CAPS     Subject =~ /^[^a-z]{12,}$/
header D_SUBJ_RE       Subject =~ /^re:/i
header D_SUBJ_EXCL     Subject =~ /!$/
header D_FROM_COM      From =~ /\.com>?\s*$/i
header D_FROM_DIGITS   From:addr =~ /\d{3,}\@/
header D_FROM_NAME2    From:name =~ /^[A-Z][a-z]+ [A-Z][a-z]+$/
header D_TO_UNDISC     To =~ /undisclosed/i
header D_TOCC_TWO      ToCc =~ /\@.*\@/s
header D_MSGID_COM     MESSAGEID =~ /\@[^>]*\.com>/i
header D_HAS_XMAILER   exists:X-Mailer
header D_NO_INREPLY    In-Reply-To !~ /./
header D_UNSET         X-Nothing-Here =~ /^dflt$/ [if-unset: dflt]
header D_RCVD_POP      Received =~ /with POP3/
header D_RCVD_ESMTP    Received =~ /with ESMTP/
header D_CT_HTML       Content-Type =~ /text\/html/i
header D_CT_MULTI      Content-Type =~ /^multipart\//i
header D_PRIO          X-Priority =~ /^\s*[12]\b/
header D_LIST_ID       exists:List-Id
body   D_CLICK         /\bclick\s+here\b/i
body   D_REMOVE        /\bremove\b/i
body   D_MONEY         /\$\s?\d[\d,]*/
body   D_CAPS_RUN      /(?:\b[A-Z]{2,}\b\W+){6}/
body   D_PARA_START    /^(?:dear|hi|hello)\b/i
body   D_LINUX         /\blinux\b/i
body   D_PERL          /\bperl\b/i
body   D_WROTE         /\bwrote:\s*$/
body   D_URL_TEXT      /https?:\/\/\S+/
body   D_NUMBERS       /\b\d{3}[-. ]\d{4}\b/
rawbody D_FONT         /<font\b/i
rawbody D_TABLE        /<table/i
rawbody D_BR           /<br\s*\/?>/i
rawbody D_NBSP         /&nbsp;/i
full   D_FULL_B64      /^Content-Transfer-Encoding:\s*base64/mi
full   D_FULL_QP       /^Content-Transfer-Encoding:\s*quoted-printable/mi
full   D_FULL_ATTACH   /^Content-Disposition:\s*attachment/mi
uri    D_URI_COM       /\.com\b/i
uri    D_URI_IP        /^https?:\/\/\d+\.\d+\.\d+\.\d+/
uri    D_URI_MAILTO    /^mailto:/i
uri    D_URI_CGI       /\.cgi\b|\?/
meta   D_META_1        D_CLICK && D_REMOVE
meta   D_META_2        (D_SUBJ_FREE || D_MONEY) && !D_LINUX
meta   D_META_3        D_CT_HTML + D_FONT + D_TABLE >= 2
meta   D_META_4        !D_HAS_XMAILER && !D_LIST_ID
`;

/**
 * Known differences, each understood and documented in docs/rules.md: rule → message ids.
 * Text the HTML hides from the reader (white or tiny fonts) is left out of our "body"
 * (src/mime/text.ts renders what a reader sees); SpamAssassin's "body" keeps it.
 */
const KNOWN: Record<string, string[]> = {
  D_CLICK: ['spam/0201.eml', 'spam/0376.eml'], // "Click here" in white-on-white links
  D_CAPS_RUN: ['spam/0476.eml'], // 13 KB of hidden capitals
  // A mailto: written in plain text keeps its ?subject= in SpamAssassin's list; the URI
  // extractor (src/checks/uri/extract.ts) reports the address alone.
  D_URI_CGI: ['spam/0401.eml'],
};

test('our hits equal SpamAssassin\'s on a corpus sample (header, body, rawbody, full, uri, meta)', { timeout: 120_000 }, async (t) => {
  const sa = findSpamassassin();
  const corpus = extractCorpus();
  if (!sa || !corpus) {
    if (process.env.PORTCULLIS_TEST_STRICT === '1') assert.fail(`missing ${sa ? 'the dev corpus' : 'spamassassin (apt-get install spamassassin)'}`);
    t.skip(sa ? 'dev corpus not found' : 'spamassassin not installed');
    corpus?.remove();
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-diff-'));
  try {
    const rules = path.join(work, 'rules');
    fs.mkdirSync(rules);
    // The TLD list lets SpamAssassin recognise schemeless URIs as we do.
    if (fs.existsSync('/usr/share/spamassassin/20_aux_tlds.cf')) fs.copyFileSync('/usr/share/spamassassin/20_aux_tlds.cf', path.join(rules, '20_aux_tlds.cf'));
    fs.writeFileSync(path.join(rules, '50_diff.cf'), RULES);
    // Sample: every 25th spam, every 110th ham.
    const withId = diffMessages(sample(corpus, 25, 110).map(([label, name]) => ({ id: `${label}/${name}`, file: corpus.path(label, name) })));
    assert.ok(withId.length >= 40, `sample of ${withId.length}`);
    const saHits = runSpamassassin(sa, withId, rules);
    assert.equal(saHits.size, withId.length, 'SpamAssassin reported on every message');

    const loaded = loadRulesText(RULES);
    assert.deepEqual(loaded.problems, []);
    const engine = new RuleEngine(loaded.ruleset, { timeBudgetMs: 5000, maxBytes: 1 << 20 });
    const diffs: string[] = [];
    let compared = 0;
    try {
      for (const m of withId) {
        const parsed = parseMessage(m.raw);
        const ours = (await engine.scan(parsed, messageUris(parsed))).hits.map((h) => h.name).sort();
        const theirs = saHits.get(m.id)!;
        compared++;
        const onlyOurs = ours.filter((r) => !theirs.includes(r) && !KNOWN[r]?.includes(m.id));
        const onlyTheirs = theirs.filter((r) => !ours.includes(r) && !KNOWN[r]?.includes(m.id));
        if (onlyOurs.length || onlyTheirs.length) diffs.push(`${m.id}: only ours [${onlyOurs}] only SpamAssassin [${onlyTheirs}]`);
      }
    } finally {
      await engine.close();
    }
    t.diagnostic(`${compared} messages compared, ${[...saHits.values()].reduce((n, h) => n + h.length, 0)} SpamAssassin hits`);
    assert.deepEqual(diffs, []);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    corpus.remove();
  }
});
