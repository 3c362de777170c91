// Content spam through the running gateway: `portcullis train` on real corpus mail, then
// messages sent with nodemailer and judged before "250" — per-recipient actions from each
// user's settings (opt-out, own thresholds, block list), Junk delivery, X-Spam-* fields, a
// content rule from an operator's .cf file, autolearn; and `portcullis scan` on an mbox
// giving the same verdicts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { sendRaw, type SendOutcome } from '../helpers/clients.js';
import { sharedDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';

const CORPUS = path.join(sharedDir, 'corpus', 'sa2002-dev.tar.gz');
const SENDER = 'news@sender.example';

function send(gw: Gateway, to: string[], raw: string | Buffer, from = SENDER): Promise<SendOutcome> {
  return sendRaw(gw.ports.mx, { from, to }, raw);
}

/** The folder a message landed in: 'INBOX' or 'Junk'. */
function folderOf(gw: Gateway, address: string, mark: string): string | undefined {
  const hit = gw.allMailboxFiles().find((m) => m.file.startsWith(gw.mailboxDir(address)) && m.content.includes(mark));
  if (!hit) return undefined;
  return /[/\\]\.Junk[/\\]/.test(hit.file) ? 'Junk' : 'INBOX';
}

describe('content spam through the gateway', { timeout: 300_000 }, () => {
  let gw: Gateway;
  let tmp: string;
  let dns: DnsServer;

  before(async () => {
    assert.ok(fs.existsSync(CORPUS), `the corpus must sit in shared/ beside the repository: ${CORPUS}`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spam-e2e-'));
    // 60 spam and 60 ham of the real corpus: enough for Bayes with min_learned 50.
    execFileSync('tar', ['xzf', CORPUS, '-C', tmp, '--wildcards', './spam/00[0-5]?.eml', './ham/00[0-5]?.eml']); // 0001–0059
    // A DNS server that answers (NXDOMAIN for everything): with DNS failing, autolearn rightly
    // refuses to learn (a low score may only mean that checks could not run).
    dns = await startDnsServer({});
    fs.writeFileSync(path.join(tmp, 'local.cf'), [
      '# an operator rule, as in a SpamAssassin local.cf',
      'body     LOCAL_TEST_MARKER  /\\bxyzzy[- ]spam[- ]marker\\b/i',
      'describe LOCAL_TEST_MARKER  The test marker phrase',
      'score    LOCAL_TEST_MARKER  9.0',
      '',
    ].join('\n'));
    gw = await startGateway({
      users: userMap('alice', 'bob', 'carol'),
      config: {
        dns: { servers: [dns.server] },
        rules: { local_paths: [path.join(tmp, 'local.cf')] },
        bayes: { min_learned: 50, autolearn: { spam: 9, ham: -100 } },
        // Nothing here is about the reject threshold: spam must be delivered to be looked at.
        policy: { thresholds: { tag: 5, junk: 8, reject: 100 } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await dns?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('`portcullis train` learns directories of real mail', async () => {
    const r = await gw.cliOk(['train', '--spam', path.join(tmp, 'spam'), '--ham', path.join(tmp, 'ham'), '--json']);
    const out = JSON.parse(r.stdout) as { spam: { learned: number; already: number }; ham: { learned: number; already: number } };
    // A message learned twice (the corpus has a few near-duplicates) counts once.
    assert.equal(out.spam.learned + out.spam.already, 59, r.stdout);
    assert.equal(out.ham.learned + out.ham.already, 59, r.stdout);
    assert.ok(out.spam.learned >= 55 && out.ham.learned >= 55, r.stdout);
    // Learning the same mail again changes nothing.
    const again = JSON.parse((await gw.cliOk(['train', '--spam', path.join(tmp, 'spam'), '--json'])).stdout) as { spam: { learned: number; already: number } };
    assert.equal(again.spam.learned, 0);
    assert.equal(again.spam.already, out.spam.learned);
  });

  it('each recipient gets its own action: Junk for alice, INBOX for bob who opted out', async () => {
    await gw.cliOk(['user', 'set', USERS.bob.address, 'spam-filter=off']);
    const mark = marker('spam');
    const raw = makeMessage({ from: SENDER, to: USERS.alice.address, subject: `Offer ${mark}`, body: 'Read this: xyzzy spam marker. Act now.' });
    const r = await send(gw, [USERS.alice.address, USERS.bob.address], raw);
    assert.ok(r.ok, JSON.stringify(r));
    await waitFor('both copies delivered', () => folderOf(gw, USERS.alice.address, mark) && folderOf(gw, USERS.bob.address, mark));
    assert.equal(folderOf(gw, USERS.alice.address, mark), 'Junk');
    assert.equal(folderOf(gw, USERS.bob.address, mark), 'INBOX');
    const stored = gw.allMailboxFiles().find((m) => m.content.includes(mark))!.content.toString('latin1');
    assert.match(stored, /^X-Spam-Status: Yes, score=\d/m);
    assert.match(stored, /LOCAL_TEST_MARKER/);
  });

  it('Bayes judges mail after training, and a spammy message is autolearned', async () => {
    const spam = fs.readFileSync(path.join(tmp, 'spam', '0001.eml')).toString('latin1').replace(/^From .*\n/, '');
    const mark = marker('bayes');
    const raw = spam.replace(/^Subject: ?(.*)$/m, `Subject: $1 ${mark} xyzzy spam marker`);
    const r = await send(gw, [USERS.alice.address], raw);
    assert.ok(r.ok, JSON.stringify(r));
    await waitFor('delivered', () => gw.allMailboxFiles().find((m) => m.content.includes(mark)));
    // The log line may come a moment after the Maildir file: wait for it, do not read once.
    const line = await waitFor('the message log line with its Bayes symbol', () => gw.tail(400).split('\n').find((l) => l.includes('"event":"message"') && /BAYES_/.test(l) && l.includes('"action":"junk"') && !l.includes('"action":"mixed"')),
      { details: () => gw.tail(60) });
    assert.ok(/"name":"BAYES_(9\d|99|999)"/.test(line), `a trained spam message scores high with Bayes:\n${gw.tail(60)}`);
    await waitFor('the autolearn log line', () => /"event":"bayes_autolearn".*"class":"spam"/.test(gw.tail(400)), { details: () => gw.tail(40) });
  });

  it('a user\'s block list applies to that user only: at RCPT for the envelope, in Junk for a From: line', async () => {
    // A sender of its own: Bayes has learned (autolearn above) that SENDER's mail is spam.
    const BLOCKED = 'promo@shop.example';
    await gw.cliOk(['user', 'set', USERS.carol.address, `block+=${BLOCKED}`]);
    const mark = marker('block');
    const raw = makeMessage({ from: BLOCKED, to: USERS.carol.address, subject: `Hello ${mark}`, body: 'Plain, friendly text.' });
    // Envelope sender on carol's list: her RCPT is refused, nobody else's.
    const refused = await send(gw, [USERS.carol.address], raw, BLOCKED);
    assert.ok(!refused.ok && refused.code === 550, JSON.stringify(refused));
    assert.match(refused.ok ? '' : refused.text, /does not accept mail from <promo@shop\.example>/);
    // Another envelope sender, the blocked address in From: the message is taken once (alice
    // accepts it); carol's copy goes to Junk, alice's to INBOX. (Alice raises her own thresholds:
    // Bayes, trained on 59 messages and autolearning the test's spam above, is quick to suspect
    // any message made by this test's template.)
    await gw.cliOk(['user', 'set', USERS.alice.address, 'tag=40', 'junk=50', 'reject=never']);
    const r = await send(gw, [USERS.carol.address, USERS.alice.address], raw, 'bounces@list.example');
    assert.ok(r.ok, JSON.stringify(r));
    await waitFor('both copies', () => folderOf(gw, USERS.carol.address, mark) && folderOf(gw, USERS.alice.address, mark));
    assert.equal(folderOf(gw, USERS.carol.address, mark), 'Junk');
    assert.equal(folderOf(gw, USERS.alice.address, mark), 'INBOX');
    // Carol alone with the blocked From: refused at end of DATA, nothing bounced.
    const alone = await send(gw, [USERS.carol.address], raw, 'bounces@list.example');
    assert.ok(!alone.ok && alone.code === 550, JSON.stringify(alone));
    const show = JSON.parse((await gw.cliOk(['user', 'show', USERS.carol.address, '--json'])).stdout) as { block: string[] };
    assert.deepEqual(show.block, [BLOCKED]);
  });

  it('GTUBE is refused at DATA beyond any threshold, lands in Junk for a user whose reject is never, and `portcullis scan` says reject', async () => {
    const mark = marker('gtube');
    const raw = makeMessage({ from: SENDER, to: USERS.carol.address, subject: `Test ${mark}`, body: `This is the GTUBE, the\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\nend.` });
    // carol keeps the default thresholds (her only setting is a block list of another sender).
    const r = await send(gw, [USERS.carol.address], raw);
    assert.equal(r.ok, false, 'GTUBE must not be accepted');
    assert.equal(r.code, 554, JSON.stringify(r));
    assert.match(r.text ?? '', /5\.7\.1 .*GTUBE/, JSON.stringify(r));
    assert.equal(gw.allMailboxFiles().some((m) => m.content.includes(mark)), false, 'nothing delivered');
    // alice set reject=never in the test before: her own settings apply, so it goes to her Junk.
    const never = await send(gw, [USERS.alice.address], raw.replace(mark, `${mark}-never`));
    assert.ok(never.ok, JSON.stringify(never));
    await waitFor('delivered to alice', () => folderOf(gw, USERS.alice.address, `${mark}-never`));
    assert.equal(folderOf(gw, USERS.alice.address, `${mark}-never`), 'Junk');
    const file = path.join(tmp, 'gtube.eml');
    fs.writeFileSync(file, raw);
    const scan = await gw.cli(['scan', '--json', file]);
    const [v] = JSON.parse(scan.stdout) as Array<{ action: string; symbols: Array<{ name: string; score: number }> }>;
    assert.equal(v!.action, 'reject', scan.stdout);
    assert.ok(v!.symbols.some((x) => x.name === 'GTUBE' && x.score >= 1000), scan.stdout);
  });

  it('a brand spelt with a look-alike letter over a look-alike link is tagged, the impersonation symbols in X-Spam-*', async () => {
    const mark = marker('phish');
    const raw = [
      'From: "PayPaI Security Team" <service@account-review.example>', `To: <${USERS.alice.address}>`, `Subject: Your account is limited ${mark}`,
      `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`, `Message-ID: <${mark}@account-review.example>`, 'MIME-Version: 1.0',
      'Content-Type: text/html; charset=utf-8', '',
      '<p>We noticed unusual activity. <a href="https://paypa1.com/signin">Restore access</a> within 24 hours.</p>', '',
    ].join('\r\n');
    const r = await sendRaw(gw.ports.mx, { from: 'service@account-review.example', to: [USERS.alice.address] }, raw);
    assert.ok(r.ok, JSON.stringify(r));
    await waitFor('delivered', () => folderOf(gw, USERS.alice.address, mark));
    const stored = gw.allMailboxFiles().find((m) => m.content.includes(mark))!.content.toString('latin1');
    assert.match(stored, /^X-Spam-Status: Yes, score=\d/m);
    for (const name of ['FROM_BRAND_MISMATCH', 'FROM_NAME_HOMOGLYPH', 'LINK_LOOKALIKE_DOMAIN']) assert.match(stored, new RegExp(name), stored.slice(0, 1500));
  });

  it('`portcullis scan` on an mbox gives one verdict per message, with the same symbols', async () => {
    const mbox = path.join(tmp, 'mixed.mbox');
    const spamMsg = makeMessage({ from: SENDER, to: USERS.alice.address, subject: 'Offer', body: 'xyzzy spam marker inside' });
    // A real ham message Bayes was trained on (its mbox "From " line is already there).
    const hamMsg = fs.readFileSync(path.join(tmp, 'ham', '0002.eml'), 'latin1');
    fs.writeFileSync(mbox, `From a@b Thu Jan  1 00:00:00 2026\n${spamMsg.replace(/\r\n/g, '\n')}\n${hamMsg.replace(/^From [^\n]*\n/, 'From a@b Thu Jan  1 00:00:00 2026\n')}\n`);
    const r = await gw.cli(['scan', '--json', mbox]);
    assert.equal(r.code, 1, `exit 1: one message is spam\n${r.stdout}\n${r.stderr}`);
    const results = JSON.parse(r.stdout) as Array<{ file: string; action: string; spam: boolean; score: number; symbols: Array<{ name: string; score: number; reason: string }> }>;
    assert.equal(results.length, 2);
    const [s, h] = results;
    assert.equal(s!.spam, true);
    assert.ok(s!.symbols.some((x) => x.name === 'LOCAL_TEST_MARKER' && x.score === 9 && x.reason === 'The test marker phrase'), JSON.stringify(s!.symbols));
    assert.equal(h!.spam, false);
    assert.ok(['deliver', 'tag'].includes(h!.action));
    const ham = await gw.cli(['scan', '--json', path.join(tmp, 'ham', '0002.eml')]);
    assert.equal(ham.code, 0, ham.stdout + ham.stderr);
  });
});
