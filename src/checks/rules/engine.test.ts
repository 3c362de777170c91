import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../mime/text.js';
import { loadRulesText } from './ruleset.js';
import { RuleEngine } from './engine.js';
import { ruleSymbols } from './check.js';
import { messageModel } from '../../mime/model.js';

const msg = (s: string) => parseMessage(Buffer.from(s.replace(/\r?\n/g, '\r\n'), 'utf8'));

function engineFor(rules: string, opts: Partial<ConstructorParameters<typeof RuleEngine>[1]> = {}) {
  const r = loadRulesText(rules);
  assert.deepEqual(r.problems.filter((p) => p.kind !== 'note'), []);
  return new RuleEngine(r.ruleset, { timeBudgetMs: 2000, maxBytes: 65536, ...opts });
}

const SAMPLE = msg([
  'From: "Bob Sender" <bob@spam.example>',
  'To: alice@example.org',
  'Cc: carol@example.net',
  'Subject: =?utf-8?Q?Caf=C3=A9?= FREE offer',
  'Message-Id: <123@mta.example>',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Cheap pills here.',
  'Buy now',
  'and again: buy now, buy now!',
  '',
  'Second paragraph starts here.',
  'Visit http://192.0.2.7/x today.',
  '',
].join('\n'));

test('each rule type reads its target; metas combine; hits carry score and description', async () => {
  const e = engineFor([
    'header SUBJ_FREE Subject =~ /\\bFREE\\b/', 'score SUBJ_FREE 1.5', 'describe SUBJ_FREE Subject says FREE',
    'header SUBJ_CAFE Subject =~ /Caf\\xc3\\xa9/', // decoded subject, matched as UTF-8 bytes
    'header FROM_ADDR From:addr =~ /^bob\\@spam\\.example$/',
    'header FROM_NAME From:name =~ /^Bob Sender$/',
    'header TOCC ToCc =~ /alice.*\\n.*carol/s',
    'header MSGID MESSAGEID =~ /^<123\\@/',
    'header ENVFROM EnvelopeFrom =~ /^bounce\\@/',
    'header NO_REPLYTO Reply-To !~ /./',
    'header UNSET_DEFAULT X-Nothing =~ /^dflt$/ [if-unset: dflt]',
    'header HAS_CC exists:Cc',
    'header HAS_BCC exists:Bcc',
    'body PARA_JOINED /Cheap pills here\\. Buy now and again/',
    'body PARA_START /^Second paragraph/',
    'body SUBJ_IN_BODY /^Caf\\xc3\\xa9 FREE offer$/',
    'body BUY_NOW /buy now/i', 'tflags BUY_NOW multiple', 'score BUY_NOW 0.5',
    'rawbody RAW_NL /Buy now\\nand again/', // CRLF is read as LF
    'full FULL_HDR /^Message-Id: <123/m',
    'uri URI_IP /^http:\\/\\/192\\.0\\.2\\.7\\//',
    'meta META_ALL SUBJ_FREE && URI_IP && BUY_NOW >= 3 && !HAS_BCC', 'score META_ALL 2',
    'meta META_NOT HAS_BCC || NOSUCH_RULE',
  ].join('\n'));
  try {
    const r = await e.scan(SAMPLE, ['http://192.0.2.7/x'], 'bounce@spam.example');
    const hit = Object.fromEntries(r.hits.map((h) => [h.name, h]));
    assert.deepEqual(Object.keys(hit).sort(), ['BUY_NOW', 'ENVFROM', 'FROM_ADDR', 'FROM_NAME', 'FULL_HDR', 'HAS_CC', 'META_ALL', 'MSGID',
      'NO_REPLYTO', 'PARA_JOINED', 'PARA_START', 'RAW_NL', 'SUBJ_CAFE', 'SUBJ_FREE', 'SUBJ_IN_BODY', 'TOCC', 'UNSET_DEFAULT', 'URI_IP']);
    assert.deepEqual(hit.SUBJ_FREE, { name: 'SUBJ_FREE', score: 1.5, description: 'Subject says FREE', count: 1 });
    assert.equal(hit.BUY_NOW!.count, 3, 'tflags multiple counts every match');
    assert.equal(hit.BUY_NOW!.score, 1.5, 'each match of a multiple rule scores');
    assert.equal(hit.META_ALL!.score, 2);
    assert.equal(r.timedOut, false);
    assert.equal(r.score, r.hits.reduce((s, h) => s + h.score, 0));
    const symbols = ruleSymbols(r);
    assert.deepEqual(symbols.find((s) => s.name === 'BUY_NOW'), { name: 'BUY_NOW', score: 1.5, reason: 'BUY_NOW (3 times)' });
  } finally {
    await e.close();
  }
});

test('maxhits caps a multiple rule; metas use counts and values of other metas', async () => {
  const e = engineFor([
    'body __NOW /now/i', 'tflags __NOW multiple maxhits=2',
    'meta __TWO __NOW', 'meta SUM_OK __TWO == 2', 'meta DIV (__NOW / 2) * 3 == 3', 'meta NEG -1', 'score NEG 1',
  ].join('\n'));
  try {
    const r = await e.scan(SAMPLE, []);
    assert.deepEqual(r.hits.map((h) => h.name).sort(), ['DIV', 'NEG', 'SUM_OK']);
  } finally {
    await e.close();
  }
});

test('catastrophic backtracking is stopped at the budget, the rule is named, the engine goes on', async () => {
  const e = engineFor([
    'header EARLY Subject =~ /x/',
    'body EVIL /(a+)+$/',
    'body LATE /zzz/',
  ].join('\n'), { timeBudgetMs: 300 });
  try {
    const evil = msg(`Subject: x\n\n${'a'.repeat(45)}b zzz\n`);
    const t0 = Date.now();
    const r = await e.scan(evil, []);
    const took = Date.now() - t0;
    assert.equal(r.timedOut, true);
    // Unstopped, (a+)+$ on 45 a's runs for days; any bound far below that proves the stop. A loose
    // one: a loaded CI machine is slow to end and respawn a worker (speed is for the benchmarks).
    assert.ok(took < 10_000, `stopped in ${took} ms`);
    assert.equal(r.slowRules.at(-1)?.name, 'EVIL');
    assert.deepEqual(r.hits.map((h) => h.name), ['EARLY'], 'hits before the runaway rule are kept');
    assert.match(ruleSymbols(r).at(-1)!.reason, /while running EVIL/);
    // A fresh worker took over: a normal message is scanned at once.
    const t1 = Date.now();
    const ok = await e.scan(msg('Subject: x\n\nzzz\n'), []);
    assert.equal(ok.timedOut, false);
    assert.deepEqual(ok.hits.map((h) => h.name).sort(), ['EARLY', 'LATE']);
    assert.ok(Date.now() - t1 < 10_000, 'the fresh worker answers');
    assert.equal(e.stats().timeouts, 1);
    assert.equal(e.stats().slow.EVIL?.timeouts, 1);
  } finally {
    await e.close();
  }
});

test('several messages in flight share the workers and all complete', async () => {
  const e = engineFor('body B /pills/\nheader S Subject =~ /FREE/', { workers: 2 });
  try {
    const results = await Promise.all(Array.from({ length: 50 }, () => e.scan(SAMPLE, [])));
    for (const r of results) assert.deepEqual(r.hits.map((h) => h.name).sort(), ['B', 'S']);
    assert.equal(e.stats().scans, 50);
  } finally {
    await e.close();
  }
  await assert.rejects(e.scan(SAMPLE, []), /closed/);
});

test('maxBytes caps the text a rule sees', async () => {
  const e = engineFor('body FAR /needle/\nrawbody RAWFAR /needle/\nfull FULLFAR /needle/', { maxBytes: 1000 });
  try {
    const far = msg(`Subject: s\n\n${'word '.repeat(400)}needle\n`);
    assert.deepEqual((await e.scan(far, [])).hits, []);
    const near = msg('Subject: s\n\nneedle\n');
    assert.deepEqual((await e.scan(near, [])).hits.map((h) => h.name).sort(), ['FAR', 'FULLFAR', 'RAWFAR']);
  } finally {
    await e.close();
  }
});

test('rulesCheck: the data-stage check parses the message, feeds URIs and the envelope, emits symbols', async () => {
  const { rulesCheck } = await import('./check.js');
  const { rulesEngineFromConfig } = await import('./index.js');
  const { rulesConfigSchema } = await import('./config.js');
  const { Readable } = await import('node:stream');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-check-'));
  fs.writeFileSync(path.join(dir, 'local.cf'), [
    'uri LINK_IP /^http:\\/\\/192\\.0\\.2\\.9\\//', 'score LINK_IP 2.5', 'describe LINK_IP Link to a numeric IP',
    'header ENV EnvelopeFrom =~ /^bulk\\@/', 'score ENV 1',
  ].join('\n'));
  const config = rulesConfigSchema.parse({ paths: [dir], time_budget: '2s', max_bytes: '64KiB' });
  const engine = rulesEngineFromConfig(config)!;
  try {
    const raw = Buffer.from('Subject: hi\r\nContent-Type: text/html\r\n\r\n<a href="http://192.0.2.9/offer">offer</a>\r\n');
    const message = { ...messageModel({ size: raw.length, stream: () => Readable.from([raw]) }), headers: [], bareNewlines: 0 };
    const check = rulesCheck(engine);
    assert.equal(check.stage, 'data');
    const result = await check.run({
      conn: { sessionId: 's', listener: 'mx', listenerKind: 'mx', remoteAddress: '192.0.2.1', remotePort: 1, localAddress: '192.0.2.2', localPort: 25, trustedNetwork: false, esmtp: true },
      envelope: { sender: 'bulk@example.org', recipients: ['a@example.net'] },
      message,
    });
    assert.deepEqual(result.symbols, [
      { name: 'LINK_IP', score: 2.5, reason: 'Link to a numeric IP' },
      { name: 'ENV', score: 1, reason: 'ENV' },
    ]);
  } finally {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(rulesEngineFromConfig(rulesConfigSchema.parse({ enabled: false })), undefined);
});
