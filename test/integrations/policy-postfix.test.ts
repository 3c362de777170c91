// `kind: policy` behind a real Postfix (docs/integrations.md): a private Postfix relays
// example.test to a sink and asks our listener through check_policy_service in
// smtpd_client_restrictions and smtpd_recipient_restrictions; swaks sends from different
// loopback source addresses (Postfix sees the address the client binds to). A DNS-listed
// client is refused at RCPT with our words, an SPF fail is refused as our SMTP path refuses
// it, an unlisted client is delivered with our scored symbols PREPENDed. Then what Postfix
// never sends, by raw socket: several requests on one connection, malformed requests
// (answered DUNNO, the connection goes on), oversized lines and requests (closed), a network
// outside `allow`.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { smtpListeners, startGateway, type Gateway } from '../helpers/gateway.js';
import { marker } from '../helpers/messages.js';
import { Sink } from '../helpers/sink.js';
import { freePorts } from '../helpers/wait.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { missingTools, portsOn, removeDir, startPostfix, strict, tempDir, type Daemon } from '../audit/daemons.js';
import { missingClient, rawDialogue, run, show } from './run.js';

const POSTFIX = '127.0.0.20';
const LISTED = '127.0.0.2';
const CLEAN = '127.0.0.3';
const missing = missingTools('postfix') || (missingClient('swaks', 'swaks') || undefined);

/** A policy request as Postfix writes it (LF, empty line at the end). */
function request(o: Record<string, string>): string {
  const attrs = {
    request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', client_address: '192.0.2.50', client_name: 'unknown',
    reverse_client_name: 'unknown', client_port: '40000', helo_name: 'mail.client.test', sender: 'news@client.test', recipient: 'alice@example.test',
    instance: '1a2b.3c4d.0', ...o,
  };
  return `${Object.entries(attrs).map(([k, v]) => `${k}=${v}`).join('\n')}\n\n`;
}

/** The action lines of a raw answer stream. */
const actions = (text: string) => text.split('\n\n').filter(Boolean).map((a) => a.replace(/^action=/, ''));

describe('Postfix check_policy_service against the policy listener', { timeout: 240_000, skip: !strict && missing ? missing : false }, () => {
  let tmp: string;
  let dns: DnsServer;
  let gw: Gateway;
  let sink: Sink;
  let postfix: Daemon;
  let policyPort: number;
  let closedPort: number;
  let metricsPort: number;
  let smtpPort: number;

  const swaks = (from: string, sender: string, subject: string) => run('swaks', [
    '--server', POSTFIX, '--port', String(smtpPort), '--local-interface', from, '--helo', 'mail.client.test',
    '--from', sender, '--to', 'alice@example.test', '--header', `Subject: ${subject}`, '--body', `policy test ${subject}`, '--timeout', '30',
  ], '', 60_000);

  before(async () => {
    if (missing) throw new Error(`required tool missing: ${missing}`);
    tmp = await tempDir('portcullis-policy-pf-');
    dns = await startDnsServer({
      // bl.test lists 127.0.0.2, as rbldnsd would answer.
      '2.0.0.127.bl.test': [{ type: 'A', data: '127.0.0.2' }, { type: 'TXT', data: 'listed by test, see https://bl.test/lookup' }],
      'forged.test': [{ type: 'TXT', data: 'v=spf1 ip4:192.0.2.1 -all' }],
      'client.test': [{ type: 'TXT', data: `v=spf1 ip4:${CLEAN} -all` }],
    });
    sink = await Sink.start();
    [policyPort, closedPort, metricsPort] = await freePorts(3);
    gw = await startGateway({
      config: ({ ports }) => ({
        dns: { servers: [dns.server], timeout: '500ms', attempts: 1 },
        dnsbl: { lists: [{ zone: 'bl.test', weight: 2, codes: ['127.0.0.2'] }], threshold: 1 },
        metrics: { enabled: true, address: '127.0.0.1', port: metricsPort },
        listeners: [
          ...smtpListeners(ports),
          { name: 'policy', kind: 'policy', port: policyPort, timeout: '3s' },
          { name: 'policy-closed', kind: 'policy', port: closedPort, allow: ['192.0.2.0/24'] },
        ],
      }),
    });
    [smtpPort] = await portsOn(POSTFIX, 1);
    const policy = `check_policy_service inet:127.0.0.1:${policyPort}`;
    postfix = await startPostfix(path.join(tmp, 'pf'), {
      address: POSTFIX, hostname: 'mx.postfix.test', ports: [smtpPort!],
      main: [
        'mydestination =',
        'relay_domains = example.test',
        `transport_maps = inline:{ { example.test = smtp:[127.0.0.1]:${sink.port} } }`,
        'smtp_tls_security_level = none',
        'smtpd_tls_security_level = none',
        // Client restrictions are asked at RCPT (smtpd_delay_reject = yes, the default): two
        // requests per recipient on one policy connection.
        `smtpd_client_restrictions = ${policy}`,
        `smtpd_recipient_restrictions = reject_unauth_destination, ${policy}`,
        'smtpd_policy_service_default_action = 451 4.3.5 Server configuration problem',
      ],
      services: [`{address}:${smtpPort} inet n - n - - smtpd`, 'smtp unix - - n - - smtp', 'relay unix - - n - - smtp'],
    });
  });
  after(async () => {
    await postfix?.stop();
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
    if (tmp) await removeDir(tmp);
  });

  it('a DNS-listed client is refused at RCPT by Postfix with our reply text; nothing reaches the sink', async () => {
    const subject = marker('listed');
    const r = await swaks(LISTED, 'news@client.test', subject);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stdout, /<\*\* +554 5\.7\.1 .*Service unavailable; Client host \[127\.0\.0\.2\] blocked using bl\.test; listed by test/i, `${show(r)}\n${gw.tail()}`);
    assert.ok(!sink.messages.some((m) => m.raw.includes(subject)));
    assert.match(gw.output, /"event":"policy_request"[^\n]*"client_address":"127\.0\.0\.2"[^\n]*"outcome":"reject"/);
  });

  it('an unlisted client is delivered, with our scored symbols PREPENDed once', async () => {
    const subject = marker('clean');
    const r = await swaks(CLEAN, 'news@client.test', subject);
    assert.equal(r.code, 0, `${show(r)}\n${postfix.output().slice(-2000)}`);
    const m = await sink.waitFor(subject, 30_000);
    const text = m.raw.toString('latin1');
    const fields = text.split(/\r?\n\r?\n/)[0]!.match(/^X-Portcullis-Policy: .*$/gm) ?? [];
    assert.equal(fields.length, 1, text.slice(0, 1500));
    assert.match(fields[0]!, /score=[-\d.]+ tests=.*SPF_PASS=/, 'the MAIL stage ran: SPF passed for client.test');
  });

  it('an SPF fail is refused at RCPT as our SMTP path refuses it (550 5.7.23)', async () => {
    const subject = marker('spf');
    const r = await swaks(CLEAN, 'ceo@forged.test', subject);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stdout, /<\*\* +550 5\.7\.23 .*forged\.test/, `${show(r)}\n${gw.tail()}`);
    assert.ok(!sink.messages.some((m) => m.raw.includes(subject)));
  });

  it('requests are counted in portcullis_policy_requests_total by listener, kind and outcome', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (labels: string) => Number(new RegExp(`^portcullis_policy_requests_total\\{${labels}\\} ([0-9]+)$`, 'm').exec(text)?.[1] ?? 0);
    const lines = text.split('\n').filter((l) => l.includes('policy_requests')).join('\n');
    assert.ok(count('listener="policy",kind="rcpt",outcome="reject"') >= 2, lines);
    assert.ok(count('listener="policy",kind="rcpt",outcome="prepend"') >= 1, lines);
  });

  it('raw: several requests on one connection, answered in order; the connect checks once per SMTP session', async () => {
    const listed = { client_address: LISTED, client_port: '41000' };
    const out = await rawDialogue(policyPort, [
      request({ ...listed, protocol_state: 'CONNECT', helo_name: '', sender: '', recipient: '' }),
      request({ ...listed, recipient: 'alice@example.test' }),
      request({ ...listed, protocol_state: 'DATA', recipient: '' }),
      request({ ...listed, protocol_state: 'END-OF-MESSAGE', recipient: '' }),
      request({ client_address: '192.0.2.77', client_port: '41001', sender: '', recipient: 'postmaster@example.test' }),
    ], { halfClose: false, waitMs: 2000 }); // under the listener's 3s idle timeout
    const a = actions(out.text);
    assert.equal(a.length, 5, out.text);
    assert.match(a[0]!, /^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using bl\.test/);
    assert.equal(a[1], a[0]);
    assert.deepEqual(a.slice(2, 4), ['DUNNO', 'DUNNO']);
    assert.match(a[4]!, /^(DUNNO|PREPEND X-Portcullis-Policy: .*)$/);
    assert.equal(out.closed, false, 'the connection stays open for the next request');
  });

  it('raw: malformed and unknown requests get DUNNO and a log line; the connection goes on', async () => {
    const out = await rawDialogue(policyPort, [
      'this is not an attribute\n\n',
      request({ request: 'junk_policy' }),
      'request=smtpd_access_policy\nsender=a\nsender=b\n\n',
      request({ client_address: 'not-an-address' }),
      request({ client_address: '192.0.2.78', client_port: '41002', protocol_state: 'VRFY' }),
      request({ client_address: '192.0.2.79', client_port: '41003' }),
    ], { halfClose: false, waitMs: 2000 });
    const a = actions(out.text);
    assert.equal(out.closed, false);
    assert.deepEqual(a.slice(0, 5), ['DUNNO', 'DUNNO', 'DUNNO', 'DUNNO', 'DUNNO'], out.text);
    assert.equal(a.length, 6, out.text);
    assert.match(gw.output, /"event":"policy_request"[^\n]*"outcome":"malformed"[^\n]*not an attribute line/);
  });

  it('raw: an oversized line or request closes the connection without an answer; the listener still serves', async () => {
    const long = await rawDialogue(policyPort, [`request=smtpd_access_policy\nsender=${'a'.repeat(9000)}`], { halfClose: false, waitMs: 5000 });
    assert.equal(long.closed, true);
    assert.equal(long.text, '');
    const many = await rawDialogue(policyPort, [`${Array.from({ length: 200 }, (_, i) => `x${i}=1`).join('\n')}\n`], { halfClose: false, waitMs: 5000 });
    assert.equal(many.closed, true);
    assert.equal(many.text, '');
    // Silence: closed after the listener's timeout (3s here).
    const idle = await rawDialogue(policyPort, ['request=smtpd_access_policy\n'], { halfClose: false, waitMs: 8000 });
    assert.equal(idle.closed, true);
    assert.ok(idle.ms >= 2500 && idle.ms < 7000, `closed after ${idle.ms} ms`);
    const ok = await rawDialogue(policyPort, [request({ client_address: '192.0.2.80', client_port: '41004', protocol_state: 'DATA' })], { halfClose: false, waitMs: 2000 });
    assert.deepEqual(actions(ok.text), ['DUNNO']);
    assert.match(gw.output, /"event":"policy_overflow"/);
  });

  it('a client outside `allow` is closed without an answer', async () => {
    const out = await new Promise<{ text: string; closed: boolean }>((resolve) => {
      const s = net.connect({ port: closedPort, host: '127.0.0.1' });
      let text = '';
      s.on('data', (d) => (text += d.toString()));
      s.on('connect', () => s.write(request({})));
      s.on('close', () => resolve({ text, closed: true }));
      s.on('error', () => undefined);
      setTimeout(() => (s.destroy(), resolve({ text, closed: false })), 5000).unref();
    });
    assert.deepEqual(out, { text: '', closed: true });
  });
});
