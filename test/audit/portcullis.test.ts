// `portcullis audit` against Portcullis itself (the real gateway, started by the test helper on
// loopback ports): no AUTH before TLS on 25 and 587, TLS 1.2+ only, no open relay on any port,
// postmaster@ and abuse@ accepted — and, as the audit promises, no message was sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import type { AuditReport } from '../../src/audit/audit.js';
import { renderText } from '../../src/audit/report-text.js';
import { runAuditCli, showRun } from './cli.js';

describe('audit of Portcullis itself', () => {
  let dns: DnsServer;
  let gw: Gateway;

  before(async () => {
    dns = await startDnsServer({
      'example.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.example.test' } }, { type: 'TXT', data: 'v=spf1 mx -all' }],
      'mx.example.test': [{ type: 'A', data: '127.0.0.1' }],
      '1.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'mx.example.test' }],
      '_dmarc.example.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject; rua=mailto:postmaster@example.test' }],
    });
    gw = await startGateway({ config: { dns: { servers: [dns.server] } } });
  });

  after(async () => {
    await gw?.cleanup();
    await dns?.close();
  });

  test('passes: no AUTH before TLS, no open relay, roles accepted, modern TLS; nothing sent', async () => {
    const ca = path.join(gw.dataDir, 'tls', 'selfsigned.crt');
    const args = ['example.test', '--config', gw.configFile, '--port', `smtp=${gw.ports.mx},submission=${gw.ports.submission},submissions=${gw.ports.submissions}`,
      '--ca', ca, '--json', '--rate', '100', '--timeout', '10s', '--helo', 'audit.example.net', '--quiet'];
    const run = await runAuditCli(args);
    const r = JSON.parse(run.stdout) as AuditReport;
    const list = r.findings.map((f) => `${f.severity.padEnd(8)} ${f.code.padEnd(26)} ${f.target} — ${f.title}`).join('\n');
    const msg = `${list}\n${showRun(args, run).slice(0, 3000)}`;

    assert.deepEqual(r.findings.filter((f) => f.severity === 'critical').map((f) => f.code), [], msg);
    assert.deepEqual([...new Set(r.findings.filter((f) => f.severity === 'warning').map((f) => f.code))], ['HOST_PRIVATE_ADDRESS'], msg);
    assert.equal(run.code, 3, msg);
    const at = (code: string, port: number) => r.findings.filter((f) => f.code === code && f.target.includes(`:${port} `));
    for (const port of [gw.ports.mx, gw.ports.submission]) {
      assert.equal(at('SMTP_NO_AUTH_BEFORE_TLS', port).length, 1, `port ${port}\n${msg}`);
      assert.equal(at('SMTP_STARTTLS', port).length, 1, msg);
    }
    for (const port of [gw.ports.mx, gw.ports.submission, gw.ports.submissions]) {
      const relay = at('RELAY_REFUSED', port);
      assert.equal(relay.length, 1, `port ${port}\n${msg}`);
      assert.match(relay[0]!.title, /Refuses all 23 relay forms/);
      assert.equal(at('TLS_OK', port).length, 1, msg);
      assert.equal(at('TLS_CERT_OK', port).length, 1, `the self-signed certificate, trusted with --ca\n${msg}`);
      assert.equal(at('TLS_LEGACY_VERSIONS', port).length, 0, msg);
    }
    // Submission offers AUTH once TLS is up.
    assert.equal(r.findings.filter((f) => f.code === 'SUBMISSION_NO_AUTH').length, 0, msg);
    const roles = at('ROLE_ACCEPTED', gw.ports.mx).map((f) => f.title).sort();
    assert.deepEqual(roles, ['abuse@example.test is accepted', 'postmaster@example.test is accepted'], msg);

    // The audit never sent a message: nothing queued, nothing delivered.
    assert.deepEqual(await gw.queueList(), []);
    assert.deepEqual(gw.allMailboxFiles(), []);
    assert.equal(gw.logs.filter((l) => l.event === 'message').length, 0);
    assert.equal(gw.logs.filter((l) => l.event === 'disconnect' && Number(l.messages) > 0).length, 0);
    // …though it did talk to the gateway: at least the relay sessions (5 forms each, 3 ports).
    const sessions = gw.logs.filter((l) => l.event === 'disconnect');
    assert.ok(sessions.length >= 15, `the gateway logged only ${sessions.length} sessions`);
    assert.ok(sessions.some((l) => Number(l.errors) > 0), 'no session had a refused command');

    // The terminal report of the same result, grouped by area.
    const text = renderText(r);
    for (const heading of ['== Encryption and logins ==', '== Open relay ==', '== Sender authentication (SPF, DKIM, DMARC) ==', '== Role addresses ==', '== Naming (reverse DNS) ==']) {
      assert.ok(text.includes(heading), `${heading} missing from\n${text}`);
    }
    assert.match(text, /exit status 3/);
  });
});
