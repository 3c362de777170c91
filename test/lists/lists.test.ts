// Mailing lists end to end (docs/lists.md): a real gateway with a list on example.test, its
// mail relayed to an smtp-server sink standing for the members' provider (remote.example,
// strict.example), the console on a free port for the web links, and a DNS server on loopback
// with the authors' SPF and DMARC records and the list domain's DKIM key (`dkim keygen`).
// Every request, post and bounce goes in over SMTP with nodemailer or the raw SMTP client; what
// the list sends is read where a member would see it: the sink, and mailauth's verifier.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Resolver } from 'node:dns/promises';
import { authenticate } from 'mailauth';
import PostalMime from 'postal-mime';
import { userMap, USERS } from '../helpers/fixtures.js';
import { prepareGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer, type ZoneData } from '../helpers/dns-server.js';
import { Sink, type SinkMessage } from '../helpers/sink.js';
import { mailer, sendRaw } from '../helpers/clients.js';
import { SmtpClient, transaction } from '../helpers/smtp-client.js';
import { freePorts, tcpAccepts, waitFor, sleep } from '../helpers/wait.js';
import { ConsoleClient } from '../web/console-client.js';
import { keyRecord, sign } from '../dkim/support.js';

const LIST = 'team@example.test';
/** signed.example's DKIM key: its posts prove their author by signature, not by SPF. */
const SIGNED_PEM = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const OWNER = USERS.alice.address;
let seq = 0;

function message(o: { from: string; to: string; subject: string; body?: string; headers?: string[] }): string {
  return [
    `From: ${o.from}`, `To: ${o.to}`, `Subject: ${o.subject}`, `Message-ID: <t${++seq}.${Date.now()}@test>`, `Date: ${new Date().toUTCString()}`,
    ...(o.headers ?? []), '', o.body ?? 'hello', '',
  ].join('\r\n');
}

/** The header fields of a message, unfolded, name lower-cased → values. */
function fields(raw: Buffer): Map<string, string[]> {
  const head = raw.toString('latin1').split('\r\n\r\n')[0]!.replace(/\r\n[ \t]+/g, ' ');
  const out = new Map<string, string[]>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i < 1) continue;
    const k = line.slice(0, i).toLowerCase();
    out.set(k, [...(out.get(k) ?? []), line.slice(i + 1).trim()]);
  }
  return out;
}
const field = (m: SinkMessage, name: string) => fields(m.raw).get(name)?.[0] ?? '';
const tokenIn = (m: SinkMessage) => /confirm ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/.exec(field(m, 'subject'))?.[1];

function parseRecord(line: string): { name: string; strings: string[] } {
  const m = /^(\S+)\.\s+IN\s+TXT\s+\(\s*((?:"[^"]*"\s*)+)\)$/.exec(line.trim());
  assert.ok(m, `not a zone-file TXT record: ${line}`);
  return { name: m[1]!, strings: [...m[2]!.matchAll(/"([^"]*)"/g)].map((s) => s[1]!) };
}

describe('mailing lists', { timeout: 300_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let dns: DnsServer;
  let consolePort: number;
  const zone: Record<string, ZoneData[string]> = {
    'remote.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }, { type: 'A', data: '127.0.0.1' }],
    '_dmarc.remote.example': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
    'strict.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }, { type: 'A', data: '127.0.0.1' }],
    '_dmarc.strict.example': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
    '_dmarc.example.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
    'signed.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }, { type: 'A', data: '127.0.0.1' }],
    'sel._domainkey.signed.example': [{ type: 'TXT', data: keyRecord(SIGNED_PEM) }],
    '_dmarc.signed.example': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
  };

  /** Messages the sink got for `to` after index `from`. */
  const sent = (to: string, since = 0) => sink.messages.slice(since).filter((m) => m.rcptTo.includes(to));
  const nextFor = (to: string, since: number, what = 'a message') =>
    waitFor(`${what} for ${to}`, () => sent(to, since)[0], { timeoutMs: 20_000, details: () => gw.tail(30) });
  const members = async () => JSON.parse((await gw.cliOk(['list', 'members', LIST, '--json'])).stdout) as { address: string; state: string; bounces: number }[];
  const stateOf = async (a: string) => (await members()).find((m) => m.address === a)?.state;
  const send = async (from: string, to: string, subject: string, body?: string, headers?: string[]) => {
    const r = await sendRaw(gw.ports.mx, { from, to: [to] }, message({ from, to, subject, body, headers }));
    assert.deepEqual(r, { ok: true }, `${from} → ${to}: ${JSON.stringify(r)}`);
  };
  /** Subscribes by mail (request, then a reply carrying the token). */
  async function subscribeByMail(address: string): Promise<void> {
    const mark = sink.messages.length;
    await send(address, 'team-request@example.test', 'subscribe');
    const req = await nextFor(address, mark, 'a confirmation request');
    const token = tokenIn(req);
    assert.ok(token, `no token in ${field(req, 'subject')}`);
    await send(address, 'team-request@example.test', `Re: confirm ${token}`, '> Someone (perhaps you) asked');
    await waitFor(`${address} to be confirmed`, async () => (await stateOf(address)) === 'confirmed', { timeoutMs: 20_000 });
  }

  before(async () => {
    sink = await Sink.start();
    dns = await startDnsServer(zone);
    [consolePort] = await freePorts(1);
    gw = await prepareGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [dns.server] },
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, tls: 'none' }] },
        console: { enabled: true, address: '127.0.0.1', port: consolePort!, admins: [] },
        lists: { web_url: `https://127.0.0.1:${consolePort}`, rate: { per_ip: 1000, per_address: 50 }, bounce_limit: 3 },
      },
    });
    const rec = parseRecord((await gw.cliOk(['dkim', 'keygen', 'example.test'])).stdout.trim().split('\n').pop()!);
    zone[rec.name] = [{ type: 'TXT', data: rec.strings }];
    dns.set(zone);
    await gw.start();
    await waitFor('the console to accept TCP', () => tcpAccepts(consolePort!), { timeoutMs: 15_000 });
    await gw.cliOk(['list', 'create', LIST, 'description=Team', `owners=${OWNER}`]);
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
  });

  it('refuses a list that already exists and an unknown setting, naming it', async () => {
    const again = await gw.cli(['list', 'create', LIST]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /list team@example\.test exists already/);
    const foreign = await gw.cli(['list', 'create', 'news@elsewhere.example']);
    assert.match(foreign.stderr, /news@elsewhere\.example: a list lives on a local domain/);
    const taken = await gw.cli(['list', 'create', OWNER]);
    assert.match(taken.stderr, /alice@example\.test is a user or an alias already/);
    const role = await gw.cli(['list', 'create', 'postmaster@example.test']);
    assert.match(role.stderr, /postmaster@ is a role address/);
    const bad = await gw.cli(['list', 'set', LIST, 'colour=red']);
    assert.match(bad.stderr, /unknown setting "colour"/);
    const shown = JSON.parse((await gw.cliOk(['list', 'show', LIST, '--json'])).stdout) as { owners: string[]; reply_to: string; content: string };
    assert.deepEqual([shown.owners, shown.reply_to, shown.content], [[OWNER], 'sender', 'plain']);
  });

  it('subscribes by mail: a request, then the reply with its token', async () => {
    await subscribeByMail('bob@remote.example');
    const welcome = await waitFor('the welcome', () => sent('bob@remote.example').find((m) => /^Welcome to team@example\.test/.test(field(m, 'subject'))));
    assert.equal(welcome.mailFrom, 'team-bounces@example.test');
    assert.equal(field(welcome, 'auto-submitted'), 'auto-replied');
  });

  it('subscribes by the web link: GET shows a confirm page and changes nothing, POST confirms', async () => {
    const mark = sink.messages.length;
    await send('carol@remote.example', 'team-subscribe@example.test', 'please');
    const req = await nextFor('carol@remote.example', mark, 'a confirmation request');
    const link = /https:\/\/127\.0\.0\.1:\d+(\/list\/confirm\?token=\S+)/.exec(req.raw.toString('utf8'))?.[1];
    assert.ok(link, req.raw.toString('utf8'));
    const web = new ConsoleClient(consolePort);
    const page = await web.get(link);
    assert.equal(page.status, 200);
    assert.match(page.body, /Subscribe <strong>carol@remote\.example<\/strong> to the list <strong>team@example\.test<\/strong>\?/);
    assert.equal(await stateOf('carol@remote.example'), undefined, 'opening the link alone changes nothing');
    const csrf = web.csrf();
    const done = await web.post('/list/confirm', { token: decodeURIComponent(link.split('token=')[1]!) });
    assert.equal(done.status, 200, done.body);
    assert.equal(await stateOf('carol@remote.example'), 'confirmed');
    const reused = await web.request('POST', '/list/confirm', { _csrf: csrf, token: decodeURIComponent(link.split('token=')[1]!) });
    assert.equal(reused.status, 410);
    assert.match(reused.body, /already used/);
  });

  it('an administrator\'s subscribe makes no member until the address confirms', async () => {
    const mark = sink.messages.length;
    const r = await gw.cliOk(['list', 'subscribe', LIST, 'dave@remote.example']);
    assert.match(r.stdout, /dave@remote\.example: confirmation request sent/);
    assert.equal(await stateOf('dave@remote.example'), 'pending');
    const req = await nextFor('dave@remote.example', mark, 'a confirmation request');
    // A post now does not reach dave.
    const before = sink.messages.length;
    await send('bob@remote.example', LIST, 'while dave is pending');
    await waitFor('the post to reach bob', () => sent('bob@remote.example', before).find((m) => field(m, 'subject') === 'while dave is pending'));
    await sleep(500);
    assert.deepEqual(sent('dave@remote.example', before), [], 'nothing sent to a pending address');
    // dave answers by mail
    await send('dave@remote.example', 'team-request@example.test', `Re: ${field(req, 'subject')}`);
    await waitFor('dave to be confirmed', async () => (await stateOf('dave@remote.example')) === 'confirmed', { timeoutMs: 20_000 });
    // import sends requests too, and refuses nonsense with the reason
    const imp = await gw.cliOk(['list', 'import', LIST, '-'], { stdin: 'frank@remote.example\n# a comment\nnot an address\n' });
    assert.match(imp.stdout, /frank@remote\.example: confirmation request sent/);
    assert.match(imp.stdout, /not an address: skipped: address "not an address" is not an address/);
    assert.equal(await stateOf('frank@remote.example'), 'pending');
  });

  it('answers subscribe, unsubscribe and status identically for a member and a non-member', async () => {
    const mask = (m: SinkMessage, who: string) => m.raw.toString('latin1')
      .split('\r\n\r\n').map((part, i) => (i === 0 ? part.replace(/\r\n[ \t]+/g, ' ').split('\r\n').filter((l) => !/^(dkim-signature|message-id|date):/i.test(l)).join('\r\n') : part)).join('\r\n\r\n')
      .replaceAll(who, 'ADDRESS').replace(/[A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{43}/g, 'TOKEN');
    for (const command of ['subscribe', 'unsubscribe', 'status']) {
      const answers: string[] = [];
      for (const who of ['bob@remote.example', 'erin@remote.example']) {
        const mark = sink.messages.length;
        await send(who, 'team-request@example.test', command);
        answers.push(mask(await nextFor(who, mark, `the answer to ${command}`), who));
      }
      assert.equal(answers[0], answers[1], `${command}: the answers differ`);
    }
    assert.equal(await stateOf('bob@remote.example'), 'confirmed', 'a request alone changes nothing');
    assert.equal(await stateOf('erin@remote.example'), undefined);
  });

  it('sends a post with HTML and an attachment to the members as plain text, with the list headers and VERP', async () => {
    const mark = sink.messages.length;
    const body = [
      'This is a multi-part message.', '--sep', 'Content-Type: text/html; charset=utf-8', '',
      '<html><body><h1>Agenda</h1><p>Meet at <b>ten</b>.</p><img src="https://tracker.example/x.gif"></body></html>',
      '--sep', 'Content-Type: application/pdf; name="agenda.pdf"', 'Content-Disposition: attachment; filename="agenda.pdf"',
      'Content-Transfer-Encoding: base64', '', 'JVBERi0xLjQKJcfsj6IK', '--sep--',
    ].join('\r\n');
    await send('bob@remote.example', LIST, 'Agenda', body, ['MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="sep"', 'DKIM-Signature: v=1; a=rsa-sha256; d=remote.example; s=x; bh=x; b=x']);
    const copies = await waitFor('copies to bob, carol and dave', () => {
      const got = sink.messages.slice(mark).filter((m) => field(m, 'subject') === 'Agenda');
      return got.length >= 3 && got;
    }, { timeoutMs: 20_000, details: () => gw.tail(30) });
    assert.deepEqual(copies.map((m) => m.rcptTo).flat().sort(), ['bob@remote.example', 'carol@remote.example', 'dave@remote.example'], 'one copy per confirmed member (frank is pending)');
    for (const m of copies) {
      const member = m.rcptTo[0]!;
      assert.equal(m.mailFrom, `team-bounces+${member.replace('@', '=')}@example.test`, 'VERP return path');
      const parsed = await PostalMime.parse(m.raw);
      const text = `${m.raw.toString('utf8')}\n${parsed.text ?? ''}`;
      assert.equal(parsed.attachments.length, 0);
      assert.equal(parsed.html, undefined);
      assert.match(field(m, 'content-type'), /^text\/plain; charset=utf-8/);
      assert.doesNotMatch(text, /<html|<b>|JVBER|multipart/i);
      assert.match(text, /Agenda/);
      assert.match(parsed.text ?? '', /Meet at ten\./);
      assert.match(parsed.text ?? '', /\[The list removed 1 attachment \(agenda\.pdf\): it sends plain text only\.\]/);
      assert.equal(field(m, 'from'), 'bob@remote.example', 'p=none: From is kept');
      assert.equal(field(m, 'reply-to'), '<bob@remote.example>', 'replies go to the author');
      assert.equal(field(m, 'list-id'), '"Team" <team.example.test>');
      assert.equal(field(m, 'list-post'), '<mailto:team@example.test>');
      assert.equal(field(m, 'precedence'), 'list');
      assert.equal(field(m, 'list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
      assert.match(field(m, 'list-unsubscribe'), /^<https:\/\/127\.0\.0\.1:\d+\/list\/unsubscribe\?token=[\w-]+\.[\w-]+>, <mailto:team-request@example\.test\?subject=unsubscribe>$/);
      const sigs = fields(m.raw).get('dkim-signature') ?? [];
      assert.equal(sigs.length, 1, 'the author\'s signature is gone, ours is there');
      assert.match(sigs[0]!, /d=example\.test/);
    }
  });

  it('rewrites From for a p=reject author, keeps the author in Reply-To, and the copy DKIM-verifies for the list domain', async () => {
    await subscribeByMail('alice@strict.example');
    const mark = sink.messages.length;
    await send('alice@strict.example', LIST, 'strict post', 'from a strict domain');
    const copy = await waitFor('the strict post at carol', () => sent('carol@remote.example', mark).find((m) => field(m, 'subject') === 'strict post'), { timeoutMs: 20_000 });
    assert.equal(field(copy, 'from'), '"alice via Team" <team@example.test>');
    assert.equal(field(copy, 'reply-to'), '<alice@strict.example>');
    assert.equal(field(copy, 'x-original-from'), 'alice@strict.example');
    const res = await authenticate(copy.raw, {
      ip: '192.0.2.1', helo: 'mx.example.test', sender: copy.mailFrom, mta: 'receiver.test', disableBimi: true,
      resolver: (name: string, type: string) => {
        const r = new Resolver();
        r.setServers([dns.server]);
        return r.resolve(name, type as 'TXT');
      },
    } as never) as { dkim: { results: { signingDomain: string; status: { result: string } }[] }; dmarc: { status: { result: string }; domain: string }; arc: { status: { result: string }; i?: number; signature?: { signingDomain?: string } } };
    assert.deepEqual(res.dkim.results.map((r) => [r.signingDomain, r.status.result]), [['example.test', 'pass']]);
    assert.equal(res.dmarc.domain, 'example.test');
    assert.equal(res.dmarc.status.result, 'pass', 'aligned: the receiver\'s DMARC passes');
    assert.equal(res.arc.status.result, 'pass', 'the list\'s ARC seal verifies');
    assert.equal(res.arc.i, 1);
  });

  it('one-click unsubscribe (RFC 8058) works without a session', async () => {
    const copy = sent('dave@remote.example').reverse().find((m) => field(m, 'subject') === 'Agenda')!;
    const url = /<https:\/\/127\.0\.0\.1:\d+(\/list\/unsubscribe\?token=[^>]+)>/.exec(field(copy, 'list-unsubscribe'))![1]!;
    const web = new ConsoleClient(consolePort);
    const r = await web.request('POST', url, { 'List-Unsubscribe': 'One-Click' });
    assert.equal(r.status, 200, r.body);
    assert.equal(await stateOf('dave@remote.example'), undefined);
    const bad = await web.request('POST', url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), { 'List-Unsubscribe': 'One-Click' });
    assert.equal(bad.status, 400);
  });

  it('holds a non-member post for moderation, tells the owner, and sends nothing to the forged sender', async () => {
    const mark = sink.messages.length;
    await send('erin@remote.example', LIST, 'buy now', 'forged, from a non-member');
    const held = await waitFor('the held post', async () => {
      const h = JSON.parse((await gw.cliOk(['list', 'held', LIST, '--json'])).stdout) as { id: number; from: string; reason: string; subject: string }[];
      return h.find((x) => x.subject === 'buy now');
    }, { timeoutMs: 20_000 });
    assert.equal(held.reason, 'the author is not a member');
    const note = await waitFor('the owner\'s notice', () => gw.readMailbox(OWNER).find((m) => m.content.toString().includes('Post held for moderation')), { timeoutMs: 20_000 });
    assert.match(note.content.toString(), /portcullis list approve team@example\.test \d+/);
    await sleep(1000);
    assert.deepEqual(sent('erin@remote.example', mark), [], 'nothing went back to the sender');
    assert.equal(sink.messages.slice(mark).filter((m) => field(m, 'subject') === 'buy now').length, 0, 'nor to the members');
    // The owner approves it: then the members get it.
    const r = await gw.cliOk(['list', 'approve', LIST, String(held.id)]);
    assert.match(r.stdout, /sent to 3 member\(s\)/, 'bob, carol and alice; dave left, frank is pending');
  });

  it('disables a member after repeated hard bounces to its VERP address', async () => {
    const dsn = (n: number) => [
      'From: Mail Delivery System <MAILER-DAEMON@mx.remote.example>', 'To: team-bounces+carol=remote.example@example.test', `Subject: Undelivered Mail ${n}`,
      `Message-ID: <bounce${n}.${Date.now()}@mx.remote.example>`, `Date: ${new Date().toUTCString()}`, 'Auto-Submitted: auto-replied', 'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"', '', '--b', 'Content-Type: text/plain', '', 'The mailbox does not exist.',
      '--b', 'Content-Type: message/delivery-status', '', 'Reporting-MTA: dns; mx.remote.example', '', 'Final-Recipient: rfc822; carol@remote.example',
      'Action: failed', 'Status: 5.1.1', 'Diagnostic-Code: smtp; 550 5.1.1 no such user', '', '--b--', '',
    ].join('\r\n');
    for (let n = 1; n <= 3; n++) {
      const c = await SmtpClient.connect(gw.ports.mx);
      try {
        await c.ehlo('mx.remote.example');
        const res = await transaction(c, '', ['team-bounces+carol=remote.example@example.test'], dsn(n));
        assert.equal(res.final?.code, 250, JSON.stringify(res));
      } finally {
        await c.quit();
      }
      if (n < 3) {
        await waitFor(`bounce ${n} counted`, async () => (await members()).find((m) => m.address === 'carol@remote.example')?.bounces === n, { timeoutMs: 20_000 });
        assert.equal(await stateOf('carol@remote.example'), 'confirmed');
      }
    }
    await waitFor('carol disabled', async () => (await stateOf('carol@remote.example')) === 'disabled', { timeoutMs: 20_000 });
    assert.ok(gw.logs.some((l) => l.event === 'list_member_disabled' && l.member === 'carol@remote.example'), 'the disabling is logged');
    const mark = sink.messages.length;
    await send('bob@remote.example', LIST, 'after the bounces');
    await waitFor('the post to reach bob', () => sent('bob@remote.example', mark).find((m) => field(m, 'subject') === 'after the bounces'));
    await sleep(500);
    assert.deepEqual(sent('carol@remote.example', mark), [], 'a disabled member gets no posts');
  });
  it('counts a copy its own queue cannot deliver (550 from the member\'s server) as a hard bounce', async () => {
    await subscribeByMail('henry@remote.example');
    sink.reject.set('henry@remote.example', 550);
    for (let n = 1; n <= 3; n++) {
      const mark = sink.messages.length;
      await send('bob@remote.example', LIST, `refused copy ${n}`);
      await waitFor(`post ${n} at bob`, () => sent('bob@remote.example', mark).find((m) => field(m, 'subject') === `refused copy ${n}`));
      await waitFor(`failure ${n} counted`, async () => (await members()).find((m) => m.address === 'henry@remote.example')?.bounces === n, { timeoutMs: 20_000, details: () => gw.tail(20) });
    }
    assert.equal(await stateOf('henry@remote.example'), 'disabled');
    assert.ok(sink.rcptLog.some((r) => r.address === 'henry@remote.example' && r.code === 550), 'the sink refused the copies');
  });

  it('a member\'s post counts only when the gateway authenticated its author: DKIM or submission pass, a forged From is held', async () => {
    await subscribeByMail('ivy@signed.example');
    // Relayed through another domain (remote.example's SPF passes, but it is not the From
    // domain): only ivy's own DKIM signature makes DMARC pass for signed.example.
    const relayed = async (subject: string, signed: boolean) => {
      const plain = Buffer.from(message({ from: 'ivy@signed.example', to: LIST, subject, body: 'from ivy' }));
      const raw = signed ? await sign(plain, { domain: 'signed.example', selector: 'sel', privateKey: SIGNED_PEM }) : plain;
      const r = await sendRaw(gw.ports.mx, { from: 'relay@remote.example', to: [LIST] }, raw);
      assert.deepEqual(r, { ok: true }, JSON.stringify(r));
    };
    let mark = sink.messages.length;
    await relayed('signed by ivy', true);
    await waitFor('ivy\'s signed post at bob', () => sent('bob@remote.example', mark).find((m) => field(m, 'subject') === 'signed by ivy'), { timeoutMs: 20_000, details: () => gw.tail(20) });

    // The same From without the signature: nothing proves ivy wrote it. Held, never bounced.
    mark = sink.messages.length;
    await relayed('forged ivy', false);
    const held = await waitFor('the forged post held', async () => {
      const h = JSON.parse((await gw.cliOk(['list', 'held', LIST, '--json'])).stdout) as { id: number; from: string; reason: string; subject: string }[];
      return h.find((x) => x.subject === 'forged ivy');
    }, { timeoutMs: 20_000, details: () => gw.tail(20) });
    assert.equal(held.from, 'ivy@signed.example');
    assert.equal(held.reason, 'the author\'s address is not authenticated (no DMARC pass)');
    await sleep(1000);
    assert.equal(sink.messages.slice(mark).filter((m) => field(m, 'subject') === 'forged ivy').length, 0, 'no member got it');
    assert.deepEqual(sent('relay@remote.example', mark), [], 'nothing went back to the envelope sender');
    // (ivy's own copy of her signed post may still be on its way: it is not about this one)
    assert.deepEqual(sent('ivy@signed.example', mark).filter((m) => field(m, 'subject') !== 'signed by ivy'), [], 'nor to the address in From');

    // The owner over authenticated submission: the login proves the author (DMARC is not run there).
    mark = sink.messages.length;
    const t = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: OWNER, pass: USERS.alice.password } });
    try {
      await t.sendMail({ envelope: { from: OWNER, to: [LIST] }, raw: message({ from: OWNER, to: LIST, subject: 'from the owner', body: 'hello all' }) });
    } finally {
      t.close();
    }
    const copy = await waitFor('the owner\'s post at bob', () => sent('bob@remote.example', mark).find((m) => field(m, 'subject') === 'from the owner'), { timeoutMs: 20_000, details: () => gw.tail(20) });
    assert.equal(field(copy, 'from'), OWNER);
  });
});
