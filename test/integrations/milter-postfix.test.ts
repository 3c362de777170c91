// `kind: milter` behind Debian's Postfix (smtpd_milters = inet:127.0.0.1:PORT), fed by swaks,
// relaying to a capturing sink: GTUBE and EICAR (the real clamd) refused by Postfix on our word
// with our reply text, an .scr attachment stripped in the delivered copy (SMFIR_REPLBODY), ham
// delivered with our X-Spam-* and Authentication-Results fields, a DNS-listed client refused at
// RCPT (the connect-stage finding given at RCPT, as on our own port). Then Portcullis stopped:
// Postfix applies milter_default_action (tempfail here).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { USERS, userMap } from '../helpers/fixtures.js';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { makeMessage, marker } from '../helpers/messages.js';
import { freePorts, tcpAccepts, waitFor } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { Sink } from '../helpers/sink.js';
import { EICAR, needClamd, startClamd, type Clamd } from '../helpers/clamd.js';
import { compose, fakePe } from '../mime/fixtures.js';
import { missingTools, removeDir, startPostfix, strict, tempDir, type Daemon } from '../audit/daemons.js';
import { missingClient, run, show, type Run } from './run.js';

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const POSTFIX = '127.0.0.31';
const LISTED = '127.0.0.2';
const CLIENT = '127.0.0.6';
const SENDER = 'news@sender.example';
const RCPT = USERS.alice.address;

const missing = missingTools('postfix') ?? missingClient('swaks', 'swaks');

describe('milter listener behind Postfix, fed by swaks', { timeout: 300_000, skip: !strict && missing ? missing : false }, () => {
  let tmp = '';
  let dns: DnsServer;
  let sink: Sink;
  let clamd: Clamd | undefined;
  let gw: Gateway;
  let postfix: Daemon;
  let smtpPort = 0;
  let subPort = 0;
  let milterPort = 0;

  /** swaks through Postfix from `from` (a loopback source address). */
  const send = (raw: string | Buffer, from = CLIENT, rcpt: string = RCPT, port = smtpPort): Promise<Run> => run('swaks', [
    '--server', POSTFIX, '--port', String(port), '--local-interface', from, '--ehlo', 'client.example.net',
    '--from', SENDER, '--to', rcpt, '--timeout', '60s', '--data', '-',
  ], raw, 90_000);
  /** What Postfix said to the client. */
  const serverSaid = (r: Run) => r.stdout.split('\n').filter((l) => /^\s*<(-|\*\*)/.test(l)).map((l) => l.replace(/^\s*<(-|\*\*)\s*/, '')).join('\n');

  before(async (t) => {
    if (!needClamd(t as never)) return;
    tmp = await tempDir('portcullis-milter-');
    [smtpPort, subPort, milterPort] = await freePorts(3);
    dns = await startDnsServer({
      [`${LISTED.split('.').reverse().join('.')}.bl.test`]: [{ type: 'A', data: '127.0.0.2' }, { type: 'TXT', data: 'listed by test' }],
    });
    sink = await Sink.start();
    clamd = await startClamd();
    gw = await startGateway({
      users: userMap('alice'),
      config: ({ ports }) => ({
        dns: { servers: [dns.server], timeout: '500ms', attempts: 1 },
        dnsbl: { lists: [{ zone: 'bl.test', weight: 2, codes: ['127.0.0.2'] }], threshold: 1 },
        antivirus: { enabled: true, clamd: clamd!.socket },
        listeners: [...smtpListeners(ports), { name: 'milter', kind: 'milter', port: milterPort }],
      }),
    });
    await waitFor('the milter listener', () => tcpAccepts(milterPort));
    postfix = await startPostfix(path.join(tmp, 'postfix'), {
      address: POSTFIX, hostname: 'mx.postfix.test', ports: [smtpPort, subPort],
      main: [
        'mydestination =',
        'relay_domains = example.test',
        `transport_maps = inline:{ example.test=smtp:[127.0.0.1]:${sink.port} }`,
        'smtp_dns_support_level = disabled',
        'mynetworks = 192.0.2.0/24',
        'smtpd_relay_restrictions = reject_unauth_destination',
        `smtpd_milters = inet:127.0.0.1:${milterPort}`,
        'milter_protocol = 6',
        'milter_default_action = tempfail',
      ],
      services: [
        `{address}:${smtpPort} inet n - n - - smtpd`,
        // A submission service as Postfix's own recipe names it to milters.
        `{address}:${subPort} inet n - n - - smtpd -o milter_macro_daemon_name=ORIGINATING`,
        'smtp unix - - n - - smtp',
      ],
    });
  });
  after(async () => {
    await postfix?.stop();
    await gw?.cleanup();
    await clamd?.stop();
    await sink?.close();
    await dns?.close();
    if (tmp) await removeDir(tmp);
  });

  it('GTUBE is refused by Postfix with our 554 5.7.1 text; nothing reaches the sink', async (t) => {
    if (!needClamd(t)) return;
    const subject = marker('pf-gtube');
    const r = await send(makeMessage({ from: SENDER, to: RCPT, subject, body: `GTUBE:\r\n${GTUBE}\r\n` }));
    assert.match(serverSaid(r), /^554 5\.7\.1 Error: message refused by content policy \(score \d+(\.\d+)?: GTUBE/m, `${show(r)}\n${postfix.output()}`);
    const line = await waitFor('message log line', () => gw.logs.find((l) => l.event === 'message' && l.component === 'milter' && l.action === 'reject' && typeof l.queue_id === 'string'));
    assert.equal(line.sender, SENDER);
    assert.ok(!sink.messages.some((m) => m.raw.includes(subject)));
  });

  it('EICAR is refused with the virus named (the real clamd)', async (t) => {
    if (!needClamd(t)) return;
    const raw = await compose([{ filename: 'eicar.com.txt', content: EICAR, contentType: 'application/octet-stream' }], { subject: marker('pf-eicar') });
    const r = await send(raw);
    assert.match(serverSaid(r), /^554 5\.7\.1 Error: .*virus:? Portcullis\.Test\.EICAR\.UNOFFICIAL/m, `${show(r)}\n${postfix.output()}`);
  });

  it('an .scr attachment is stripped in the delivered copy, summarised in X-Portcullis-Attachments', async (t) => {
    if (!needClamd(t)) return;
    const subject = marker('pf-scr');
    const scr = fakePe(2500);
    // A large harmless part beside it: the replaced body spans several SMFIR_REPLBODY packets (64 KiB each).
    const notes = `${'Minutes of the meeting, one line of many to make this part large.\n'.repeat(3000)}${marker('end')}\n`;
    const raw = await compose([
      { filename: 'screensaver.scr', content: scr, contentType: 'application/octet-stream' },
      { filename: 'notes.txt', content: notes, contentType: 'text/plain' },
    ], { subject });
    const r = await send(raw);
    assert.match(serverSaid(r), /^250 2\.0\.0 Ok: queued/m, show(r));
    const got = (await sink.waitFor(subject, 30_000)).raw.toString('latin1');
    assert.match(got, /^X-Portcullis-Attachments: .*stripped "screensaver\.scr"/m, got.slice(0, 2000));
    assert.match(got, /An attachment was removed from this message/);
    assert.ok(!got.includes(scr.toString('base64').slice(0, 60)), 'the executable\'s bytes are gone');
    assert.ok(got.length > notes.length, `the large part is all there (${got.length} bytes delivered)`);
    // The large part's encoded content, byte for byte as sent.
    const sent = raw.toString('latin1');
    const start = sent.indexOf('\r\n\r\n', sent.indexOf('filename=notes.txt')) + 4;
    const block = sent.slice(start, sent.indexOf('\r\n--', start));
    assert.ok(block.length > 150_000 && got.includes(block), 'the large part survived the rewrite intact');
  });

  it('ham is delivered with our X-Spam-* and Authentication-Results fields on top', async (t) => {
    if (!needClamd(t)) return;
    const subject = marker('pf-ham');
    const r = await send(makeMessage({ from: SENDER, to: RCPT, subject, extraHeaders: ['X-Spam-Flag: YES'], body: 'Hello Alice,\r\nthe minutes of Tuesday are below.\r\n' }));
    assert.match(serverSaid(r), /^250 2\.0\.0 Ok: queued/m, show(r));
    const got = (await sink.waitFor(subject, 30_000)).raw.toString('latin1');
    const head = got.slice(0, got.indexOf('\r\n\r\n'));
    assert.match(head, /^X-Spam-Status: No, score=-?[\d.]+ required=5\r\n\ttests=/m, head);
    assert.match(head, /^X-Spam-Score: /m);
    assert.match(head, /^Authentication-Results: mx\.example\.test;/m);
    assert.doesNotMatch(head, /^X-Spam-Flag:/m, 'the forged verdict field was removed');
  });

  it('a DNS-listed client is refused at RCPT with the list named; the log has the envelope', async (t) => {
    if (!needClamd(t)) return;
    const r = await send(makeMessage({ from: SENDER, to: RCPT, subject: marker('pf-listed') }), LISTED);
    assert.match(serverSaid(r), /^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using bl\.test/m, `${show(r)}\n${postfix.output()}`);
    // Refused at RCPT: swaks never got to DATA.
    assert.ok(!r.stdout.includes('-> DATA'), show(r));
    const line = await waitFor('rcpt_reject', () => gw.logs.find((l) => l.event === 'rcpt_reject' && l.component === 'milter' && l.client === LISTED));
    assert.equal(line.sender, SENDER);
  });

  it('the listed client still reaches postmaster@ (role addresses are exempt, as on our own port)', async (t) => {
    if (!needClamd(t)) return;
    const subject = marker('pf-postmaster');
    const r = await send(makeMessage({ from: SENDER, to: 'postmaster@example.test', subject }), LISTED, 'postmaster@example.test');
    assert.match(serverSaid(r), /^250 2\.0\.0 Ok: queued/m, show(r));
    await sink.waitFor(subject, 30_000);
  });

  it('the same listed client on the ORIGINATING (submission) service is judged as submission: no DNS list refusal', async (t) => {
    if (!needClamd(t)) return;
    const subject = marker('pf-originating');
    const r = await send(makeMessage({ from: SENDER, to: RCPT, subject }), LISTED, RCPT, subPort);
    assert.match(serverSaid(r), /^250 2\.0\.0 Ok: queued/m, show(r));
    const got = (await sink.waitFor(subject, 30_000)).raw.toString('latin1');
    assert.doesNotMatch(got.slice(0, got.indexOf('\r\n\r\n')), /DNSBL_/, 'no DNS list symbol');
  });

  it('Portcullis down: Postfix applies milter_default_action = tempfail (451 4.7.1 or 421), nothing delivered', async (t) => {
    if (!needClamd(t)) return;
    await gw.stop();
    const subject = marker('pf-down');
    const r = await send(makeMessage({ from: SENDER, to: RCPT, subject }));
    assert.match(serverSaid(r), /^4\d\d 4\.\d\.\d/m, show(r));
    assert.ok(!sink.messages.some((m) => m.raw.includes(subject)));
  });
});
