// Detection apart from policy, through the running gateway: every policy refusal (early talker,
// DNS list, SPF fail, DMARC p=reject, unscannable MIME, a virus, the content score) is sent by a
// gateway with `policy.observe: false`, and only logged as "would reject" — with the exact reply —
// by the same configuration with `policy.observe: true`, which accepts and delivers the mail.
// Protocol safety (relay denial, unknown users) is refused in observe mode too. Then the one
// weight precedence, unknown symbols refused at start, and the deprecated per-check keys.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import YAML from 'yaml';
import { assertReply, EXT_SENDER, USERS, userMap } from '../helpers/fixtures.js';
import { baseConfig, mergeConfig, prepareGateway, runCli, showCli, startGateway, type ConfigObject, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { dataBlock, SmtpClient } from '../helpers/smtp-client.js';
import { freePorts, waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { EICAR, needClamd, startClamd, type Clamd } from '../helpers/clamd.js';
import { FAKE_EXE, zipOf } from '../helpers/archive-fixtures.js';

const GREETING_DELAY_MS = 600;
const LISTED = '127.0.0.2';
const ALICE = USERS.alice.address;

const ZONE = {
  // 127.0.0.2 is on the DNS list; every other loopback client is not.
  '2.0.0.127.bl.test': [{ type: 'A' as const, data: '127.0.0.2' }, { type: 'TXT' as const, data: 'listed by test' }],
  'fail.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  'pass.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:127.0.0.0/8 -all' }],
  '_dmarc.reject.test': [{ type: 'TXT' as const, data: 'v=DMARC1; p=reject' }],
  'reject.test': [{ type: 'TXT' as const, data: 'v=spf1 ip4:192.0.2.0/24 -all' }],
};

interface Outcome {
  /** The refusal: the stage where it came and the reply; undefined when the message was accepted. */
  refused?: { stage: 'rcpt' | 'data'; code: number; enhanced?: string; text: string };
  subject: string;
  client: string;
}

interface Dialogue {
  /** Loopback source address: each case its own, so greeting passes and lists do not mix. */
  client: string;
  sender: string;
  /** Talk before the banner. */
  early?: boolean;
  /** The EHLO name (default client.pass.test). */
  helo?: string;
  message: (subject: string) => string;
}

const date = () => new Date().toUTCString().replace('GMT', '+0000');
const plain = (from: string) => (subject: string) =>
  `From: <${from}>\r\nTo: <${ALICE}>\r\nSubject: ${subject}\r\nDate: ${date()}\r\nMessage-ID: <${subject}@client.test>\r\n\r\nHello, ${subject}.\r\n`;

function multipart(subject: string, from: string, depth: number, leaf: string): string {
  let body = leaf;
  let type = 'text/plain';
  for (let i = depth; i > 0; i--) {
    const b = `b${i}-${subject}`;
    body = `--${b}\r\nContent-Type: ${type}\r\n\r\n${body}\r\n--${b}--\r\n`;
    type = `multipart/mixed; boundary="${b}"`;
  }
  return `From: <${from}>\r\nTo: <${ALICE}>\r\nSubject: ${subject}\r\nDate: ${date()}\r\nMessage-ID: <${subject}@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: ${type}\r\n\r\n${body}`;
}

function withAttachment(subject: string, from: string, name: string, content: Buffer): string {
  const b = `att-${subject}`;
  return [
    `From: <${from}>`, `To: <${ALICE}>`, `Subject: ${subject}`, `Date: ${date()}`, `Message-ID: <${subject}@client.test>`,
    'MIME-Version: 1.0', `Content-Type: multipart/mixed; boundary="${b}"`, '',
    `--${b}`, 'Content-Type: text/plain', '', 'See the attachment.', `--${b}`,
    `Content-Type: application/octet-stream; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`, 'Content-Transfer-Encoding: base64', '',
    content.toString('base64'), `--${b}--`, '',
  ].join('\r\n');
}

/** The refusal kinds, each a dialogue that the default policy refuses. */
const CASES: Record<string, { dialogue: Dialogue; symbol: string; stage: 'rcpt' | 'data'; code: number; text: RegExp; av?: boolean }> = {
  'an early talker': {
    dialogue: { client: '127.0.0.31', sender: EXT_SENDER, early: true, message: plain(EXT_SENDER) },
    symbol: 'EARLY_TALKER', stage: 'rcpt', code: 550, text: /talked before my greeting/,
  },
  'a client on a DNS list': {
    dialogue: { client: LISTED, sender: EXT_SENDER, message: plain(EXT_SENDER) },
    symbol: 'DNSBL_LISTED', stage: 'rcpt', code: 554, text: /blocked using bl\.test/,
  },
  'a HELO the operator refuses (policy.actions HELO_BARE_IP: reject)': {
    dialogue: { client: '127.0.0.32', sender: EXT_SENDER, helo: '127.0.0.32', message: plain(EXT_SENDER) },
    symbol: 'HELO_BARE_IP', stage: 'rcpt', code: 554, text: /refused by local policy \(HELO_BARE_IP\)/,
  },
  'an SPF fail': {
    dialogue: { client: '127.0.0.33', sender: 'someone@fail.test', message: plain('someone@fail.test') },
    symbol: 'SPF_FAIL', stage: 'rcpt', code: 550, text: /5\.7\.23 .*SPF/,
  },
  'a From of a p=reject domain failing DMARC': {
    dialogue: { client: '127.0.0.34', sender: 'bounce@pass.test', message: plain('ceo@reject.test') },
    symbol: 'DMARC_REJECT', stage: 'data', code: 550, text: /DMARC policy of reject\.test \(p=reject\)/,
  },
  'a message the MIME walk cannot see whole (nested past attachments.max_depth)': {
    dialogue: { client: '127.0.0.35', sender: 'bounce@pass.test', message: (s) => multipart(s, 'bounce@pass.test', 5, 'deep inside') },
    symbol: 'MIME_UNSCANNABLE', stage: 'data', code: 554, text: /5\.6\.0/,
  },
  'an executable inside an archive, refused by policy.actions (ARCHIVE_EXE: reject)': {
    dialogue: { client: '127.0.0.39', sender: 'bounce@pass.test', message: (s) => withAttachment(s, 'bounce@pass.test', 'invoice.zip', zipOf([{ name: 'setup.exe', data: FAKE_EXE }])) },
    symbol: 'ARCHIVE_EXE', stage: 'data', code: 554, text: /executable/,
  },
  'a virus': {
    dialogue: { client: '127.0.0.36', sender: 'bounce@pass.test', message: (s) => withAttachment(s, 'bounce@pass.test', 'eicar.com', EICAR) },
    symbol: 'AV_VIRUS', stage: 'data', code: 554, text: /virus/i, av: true,
  },
  'a content score past the reject threshold': {
    // policy.symbols gives MISSING_DATE 20 (the operator's weight), so a message without Date: scores past 15.
    dialogue: { client: '127.0.0.37', sender: 'bounce@pass.test', message: (s) => plain('bounce@pass.test')(s).replace(/Date: [^\r]*\r\n/, '') },
    symbol: 'SCORE', stage: 'data', code: 554, text: /5\.7\.1 .*content policy \(score [0-9.]+: MISSING_DATE/,
  },
};

async function run(gw: Gateway, d: Dialogue, name: string): Promise<Outcome> {
  const subject = marker(name);
  const c = await SmtpClient.connect(gw.ports.mx, { localAddress: d.client, readGreeting: !d.early });
  try {
    if (d.early) {
      c.send(`EHLO ${d.helo ?? 'client.pass.test'}`);
      assertReply(await c.readReply(), 220, undefined, c.describe());
      assertReply(await c.readReply(), 250, undefined, c.describe());
    } else {
      await c.ehlo(d.helo ?? 'client.pass.test');
    }
    assertReply(await c.cmd(`MAIL FROM:<${d.sender}>`), 250, undefined, c.describe());
    const rcpt = await c.cmd(`RCPT TO:<${ALICE}>`);
    if (rcpt.code !== 250) return { refused: { stage: 'rcpt', ...rcpt }, subject, client: d.client };
    assertReply(await c.cmd('DATA'), 354, undefined, c.describe());
    c.write(dataBlock(d.message(subject)));
    const end = await c.readReply();
    if (end.code !== 250) return { refused: { stage: 'data', ...end }, subject, client: d.client };
    return { subject, client: d.client };
  } finally {
    await c.quit().catch(() => {});
  }
}

describe('policy.observe: every policy refusal is sent without it, logged as "would reject" with it', { timeout: 300_000 }, () => {
  let dns: DnsServer;
  let clamd: Clamd | undefined;
  let strict: Gateway;
  let observing: Gateway;
  let metricsPort: number;
  before(async () => {
    [metricsPort] = (await freePorts(1)) as [number];
    dns = await startDnsServer(ZONE);
    try {
      clamd = await startClamd();
    } catch {
      clamd = undefined; // the AV case skips (or fails under CI) through needClamd
    }
    const common = (observe: boolean): ConfigObject => ({
      dns: { servers: [dns.server], timeout: '300ms', attempts: 1 },
      greeting: { delay: `${GREETING_DELAY_MS}ms` },
      tarpit: { delay: '0s' }, // the tarpit has its own tests; here it would only slow the dialogues
      dnsbl: { lists: [{ zone: 'bl.test', weight: 1 }] },
      attachments: { max_depth: 3 },
      ...(clamd ? { antivirus: { enabled: true, clamd: clamd.socket } } : {}),
      policy: { observe, symbols: { MISSING_DATE: 20 }, actions: { HELO_BARE_IP: 'reject', ARCHIVE_EXE: 'reject' } },
    });
    [strict, observing] = await Promise.all([
      startGateway({ users: userMap('alice'), config: common(false) }),
      // The operator's weight for the list's symbol: it must win over the list's own weight (1).
      startGateway({ users: userMap('alice'), config: { ...mergeConfig(common(true), { policy: { symbols: { DNSBL_BL_TEST: 2.5 } } }), metrics: { enabled: true, address: '127.0.0.1', port: metricsPort } } }),
    ]);
  });
  after(async () => {
    await strict?.cleanup();
    await observing?.cleanup();
    await clamd?.stop();
    await dns?.close();
  });

  for (const [name, kase] of Object.entries(CASES)) {
    it(`${name}: refused with ${kase.code} at ${kase.stage.toUpperCase() === 'RCPT' ? 'RCPT' : 'the end of DATA'}; in observe mode accepted, delivered, logged with that reply`, async (t: TestContext) => {
      if (kase.av && !needClamd(t)) return;
      const refused = await run(strict, kase.dialogue, name);
      assert.ok(refused.refused, `the strict gateway should refuse ${name}\n${strict.tail()}`);
      assert.equal(refused.refused.stage, kase.stage);
      assert.equal(refused.refused.code, kase.code, refused.refused.text);
      assert.match(refused.refused.text, kase.text);
      assert.equal(strict.allMailboxFiles().filter((m) => m.content.includes(refused.subject)).length, 0, 'nothing delivered');

      const accepted = await run(observing, kase.dialogue, name);
      assert.equal(accepted.refused, undefined, `observe mode should accept ${name}: ${JSON.stringify(accepted.refused)}`);
      // Delivered (INBOX or Junk: where it lands is the score's business, not the refusal's).
      await waitFor('the message delivered', () => observing.allMailboxFiles().find((m) => m.content.includes(accepted.subject)), { timeoutMs: 15_000 });
      // The would-be refusal is logged with the reply the strict gateway sent, word for word.
      const sent = `${kase.code} ${refused.refused.text}`.replace(/\s+/g, ' ').trim();
      await waitFor(`would_reject ${kase.symbol} with the reply "${sent}"`, () => observing.logs.find((l) => l.event === 'would_reject' && l.symbol === kase.symbol && l.would_reply === sent), {
        timeoutMs: 5000, details: () => JSON.stringify(observing.logs.filter((l) => l.event === 'would_reject').slice(-5)),
      });
      const message = await waitFor('the message log line marked "would reject"', () => observing.logs.find((l) => l.event === 'message' && l.observe === 'would reject' && Array.isArray(l.would_reply) && l.would_reply.includes(sent)));
      assert.equal(message.action === 'reject', false, 'the message was not refused');
    });
  }

  it('one precedence of weights: policy.symbols > the weight in the check\'s own configuration > the registry', async () => {
    // Log lines may trail the replies: wait for them.
    const weightOf = async (gw: Gateway, name: string) => {
      const line = await waitFor(`a log line of ${LISTED} with symbols`, () => gw.logs.find((l) => (l.event === 'rcpt_reject' || l.event === 'message') && l.client === LISTED && Array.isArray(l.symbols)));
      return (line.symbols as Array<{ name: string; score: number }>).find((x) => x.name === name)?.score;
    };
    assert.equal(await weightOf(strict, 'DNSBL_BL_TEST'), 1, 'the list\'s weight (dnsbl.lists[].weight) when the operator names nothing');
    assert.equal(await weightOf(observing, 'DNSBL_BL_TEST'), 2.5, 'policy.symbols wins over the list\'s weight');
    // MISSING_DATE has its weight from conf/scores.yaml; policy.symbols (20) won in both (the content-score case).
    const missing = await waitFor('the refused message\'s log line', () => strict.logs.find((l) => l.event === 'message' && l.client === '127.0.0.37'));
    assert.ok(missing, JSON.stringify(strict.logs.filter((l) => l.client === '127.0.0.37')));
    assert.equal((missing?.symbols as Array<{ name: string; score: number }>).find((x) => x.name === 'MISSING_DATE')?.score, 20, JSON.stringify(missing));
  });

  it('observe mode still refuses what is protocol safety: relaying for a foreign domain, an unknown user', async () => {
    const c = await SmtpClient.connect(observing.ports.mx, { localAddress: '127.0.0.40' });
    await c.ehlo('client.pass.test');
    assertReply(await c.cmd('MAIL FROM:<bounce@pass.test>'), 250, undefined, c.describe());
    const relay = await c.cmd('RCPT TO:<victim@elsewhere.example>');
    assertReply(relay, 554, '5.7.1', c.describe());
    const unknown = await c.cmd('RCPT TO:<nobody@example.test>');
    assertReply(unknown, 550, '5.1.1', c.describe());
    await c.quit();
  });

  it('the refusals not sent are counted in portcullis_would_reject_total by stage and symbol', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const kase of Object.values(CASES)) {
      if (kase.av && !clamd) continue;
      const line = new RegExp(`^portcullis_would_reject_total\\{stage="${kase.stage === 'rcpt' ? '(?:connect|helo|mail|rcpt)' : 'data'}",symbol="${kase.symbol}"\\} ([0-9]+)$`, 'm').exec(text);
      assert.ok(line && Number(line[1]) >= 1, `${kase.symbol} counted\n${text.split('\n').filter((l) => l.includes('would_reject')).join('\n')}`);
    }
  });
});

describe('policy keys checked at start; deprecated per-check keys mapped with a warning', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-policy-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const good = () => baseConfig({ mx: 2525, submission: 5870, submissions: 4650, pop3: 1100, pop3s: 9950, imap: 1430, imaps: 9930 }, path.join(dir, 'data'));
  async function check(name: string, patch: ConfigObject) {
    const file = path.join(dir, `${name}.yaml`);
    await fs.writeFile(file, YAML.stringify(mergeConfig(good(), patch)));
    const r = await runCli(['config', 'check', file]);
    return { r, show: showCli(['config', 'check', file], r), out: `${r.stdout}${r.stderr}` };
  }

  for (const [what, patch, key, fault] of [
    ['a misspelt symbol in policy.symbols', { policy: { symbols: { SPF_FAILL: 0 } } }, 'policy.symbols.SPF_FAILL', /unknown symbol/],
    ['an unknown symbol in policy.actions', { policy: { actions: { DNSBL_LISTEDD: 'score' } } }, 'policy.actions."DNSBL_LISTEDD"', /unknown symbol/],
    ['a glob that matches nothing', { policy: { actions: { 'NOSUCH_*': 'reject' } } }, 'policy.actions."NOSUCH_*"', /matches no symbol/],
    ['an unknown group', { policy: { actions: { 'group:nosuch': 'junk' } } }, 'policy.actions."group:nosuch"', /unknown group/],
    ['an action given to protocol safety', { policy: { actions: { ATTACH_UNREMOVABLE: 'score' } } }, 'policy.actions."ATTACH_UNREMOVABLE"', /protocol safety/],
  ] as const) {
    it(`\`config check\` refuses ${what}, naming ${key}`, async () => {
      const { r, show, out } = await check(key.replace(/\W/g, '_'), patch as ConfigObject);
      assert.notEqual(r.code, 0, show);
      assert.ok(out.includes(key), `names ${key}\n${show}`);
      assert.match(out, fault, show);
    });
  }

  it('`serve` refuses to start with an unknown symbol in policy.symbols, naming the key', async () => {
    const gw = await prepareGateway({ config: { policy: { symbols: { NOT_A_SYMBOL: 3 } } } });
    try {
      const r = await runCli(['serve', '--config', gw.configFile], { timeoutMs: 20_000 });
      assert.notEqual(r.code, 0, showCli(['serve'], r));
      assert.match(`${r.stdout}${r.stderr}`, /policy\.symbols\.NOT_A_SYMBOL: unknown symbol/, showCli(['serve'], r));
    } finally {
      await gw.cleanup();
    }
  });

  for (const [old, patch, form] of [
    ['dnsbl.action', { dnsbl: { action: 'score' } }, 'DNSBL_LISTED: score'],
    ['spf.fail_action', { spf: { fail_action: 'score' } }, 'SPF_FAIL: score'],
    ['greeting.early_talker', { greeting: { early_talker: 'score' } }, 'EARLY_TALKER: score'],
    ['antivirus.on_failure', { antivirus: { on_failure: 'tag' } }, 'AV_UNAVAILABLE: tag'],
    ['authentication.dmarc.enforce', { authentication: { dmarc: { enforce: 'junk' } } }, 'DMARC_REJECT: junk'],
    ['archives.executable_inside', { archives: { executable_inside: 'reject' } }, 'ARCHIVE_EXE: reject'],
    ['archives.encrypted', { archives: { encrypted: 'reject' } }, 'ARCHIVE_ENCRYPTED: reject'],
    ['attachments.on_unscannable', { attachments: { on_unscannable: 'tempfail' } }, 'MIME_UNSCANNABLE: tempfail'],
  ] as const) {
    it(`the deprecated ${old} is accepted with a warning that shows the new form (${form})`, async () => {
      const { r, show, out } = await check(old.replace(/\W/g, '_'), patch as ConfigObject);
      assert.equal(r.code, 0, show);
      assert.match(out, new RegExp(`warning: ${old.replace(/\./g, '\\.')}: .*deprecated.*policy: \\{ actions: \\{ [^}]*${form}`), show);
    });
  }

  it('`check-ip` takes a configuration whose policy.actions names a content rule, and shows the resolved actions', async () => {
    const file = path.join(dir, 'rule-action.yaml');
    await fs.writeFile(file, YAML.stringify(mergeConfig(good(), { policy: { actions: { FROM_NO_ADDRESS: 'junk', DNSBL_LISTED: 'score' } } })));
    const r = await runCli(['check-ip', '127.0.0.2', '--config', file, '--json']);
    assert.equal(r.code, 0, showCli(['check-ip'], r));
    assert.deepEqual(JSON.parse(r.stdout).actions, { DNSBL_LISTED: 'score', EARLY_TALKER: 'reject' });
  });

  it('a deprecated key with a value it never took is refused with the new forms', async () => {
    const { r, show, out } = await check('bad-legacy', { spf: { fail_action: 'junk' } } as ConfigObject);
    assert.notEqual(r.code, 0, show);
    assert.match(out, /spf\.fail_action: this key moved to policy\.actions.*reject → policy: \{ actions: \{ SPF_FAIL: reject \} \}/, show);
  });

  it('a deprecated key that contradicts policy.actions is refused', async () => {
    const { r, show, out } = await check('contradiction', { spf: { fail_action: 'score' }, policy: { actions: { SPF_FAIL: 'reject' } } } as ConfigObject);
    assert.notEqual(r.code, 0, show);
    assert.match(out, /policy\.actions\.SPF_FAIL: reject contradicts a deprecated key/, show);
  });
});
