// TLS-RPT through the running gateway: a day's aggregate in the data directory (as the outbound
// TLS policy writes it), `portcullis tls-rpt send --date D` over the control socket, the report
// POSTed to an HTTPS collector found through the _smtp._tls record of the loopback DNS server,
// and mailed through the gateway's own queue and relay route to an smtp-server sink.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createTlsRptStore } from '../../src/delivery/tls-policy/tlsrpt-aggregate.js';
import type { HostTlsPolicy } from '../../src/delivery/outbound-tls.js';
import { silentLogger } from '../../src/log.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { prepareGateway, showCli, type Gateway } from '../helpers/gateway.js';
import { Sink } from '../helpers/sink.js';
import { createTestPki, type TestPki } from '../helpers/test-pki.js';

const COLLECTOR = '127.0.0.145';

describe('tls-rpt send', { timeout: 120_000 }, () => {
  let pki: TestPki;
  let dns: DnsServer;
  let sink: Sink;
  let collector: https.Server;
  let gw: Gateway;
  const posts: { url?: string; type?: string; body: Buffer }[] = [];

  before(async () => {
    pki = createTestPki();
    const cert = pki.issue('collector.rpt.test');
    collector = https.createServer({ key: cert.key, cert: cert.chain }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ url: req.url, type: req.headers['content-type'], body: Buffer.concat(chunks) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve, reject) => collector.once('error', reject).listen(443, COLLECTOR, resolve));
    dns = await startDnsServer({
      '_smtp._tls.dest.test': [{ type: 'TXT', data: 'v=TLSRPTv1; rua=mailto:reports@rpt.test,https://collector.rpt.test/reports' }],
      'collector.rpt.test': [{ type: 'A', data: COLLECTOR }],
    });
    sink = await Sink.start();
    const rootFile = path.join(pki.dir, 'root.pem');
    gw = await prepareGateway({
      config: {
        dns: { servers: [dns.server] },
        relay: { routes: [{ domain: 'rpt.test', host: '127.0.0.1', port: sink.port, protocol: 'smtp', tls: 'none' }] },
        outbound: { tls: { tls_rpt: { organization: 'Gateway Test Org' } } },
      },
      // The collector's certificate comes from the test CA.
      env: { NODE_EXTRA_CA_CERTS: rootFile },
    });
    // The aggregate of 2026-12-06 as the policy leaves it in the data directory.
    const store = createTlsRptStore({ dataDir: gw.dataDir, logger: silentLogger(), now: () => Date.parse('2026-12-06T12:00:00Z') });
    const policy = { mode: 'required', servername: 'mx.dest.test', testing: false, policyType: 'sts', check: () => ({ ok: true }) } as HostTlsPolicy;
    const details = { policyDomain: 'dest.test', policyString: ['version: STSv1', 'mode: enforce', 'mx: mx.dest.test', 'max_age: 86400'], mxHost: ['mx.dest.test'] };
    const attempt = { domain: 'dest.test', mxHost: 'mx.dest.test', receivingIp: '192.0.2.25', sendingIp: '198.51.100.1', policy };
    store.record({ ...attempt, result: 'success' }, details);
    store.record({ ...attempt, result: 'certificate-expired', detail: 'certificate expired on Feb 1 2020' }, details);
    store.close();
    await gw.start();
  });

  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
    collector?.closeAllConnections();
    await new Promise((r) => collector?.close(r));
    pki?.remove();
  });

  it('sends the day\'s report by HTTPS POST and, through the queue, as mail; not twice', async () => {
    const args = ['tls-rpt', 'send', '--date', '2026-12-06', '--json'];
    const r = await gw.cli(args);
    assert.equal(r.code, 0, showCli(args, r));
    const outcomes = JSON.parse(r.stdout) as { domain: string; status: string; destinations: string[] }[];
    assert.deepEqual(outcomes, [{ domain: 'dest.test', status: 'sent', destinations: ['mailto:reports@rpt.test ok', 'https://collector.rpt.test/reports ok'] }]);

    assert.equal(posts.length, 1);
    assert.equal(posts[0]!.url, '/reports');
    assert.equal(posts[0]!.type, 'application/tlsrpt+gzip');
    const report = JSON.parse(zlib.gunzipSync(posts[0]!.body).toString('utf8'));
    assert.equal(report['organization-name'], 'Gateway Test Org');
    assert.equal(report['contact-info'], 'postmaster@mx.example.test');
    assert.deepEqual(report.policies[0].summary, { 'total-successful-session-count': 1, 'total-failure-session-count': 1 });
    assert.equal(report.policies[0]['failure-details'][0]['result-type'], 'certificate-expired');
    assert.equal(report.policies[0].policy['policy-type'], 'sts');

    const mail = await sink.waitFor('TLS-Report-Domain: dest.test', 20_000);
    assert.equal(mail.mailFrom, 'noreply-tlsrpt@mx.example.test');
    assert.deepEqual(mail.rcptTo, ['reports@rpt.test']);
    assert.match(mail.raw.toString('latin1'), /TLS-Report-Submitter: mx\.example\.test\r\n/);
    assert.match(mail.raw.toString('latin1'), /Content-Type: application\/tlsrpt\+gzip/);

    const again = await gw.cli(args);
    assert.equal(again.code, 0, showCli(args, again));
    assert.deepEqual(JSON.parse(again.stdout).map((o: { status: string }) => o.status), ['already-sent']);
    assert.equal(posts.length, 1);
    assert.ok(fs.existsSync(path.join(gw.dataDir, 'tls-rpt', '2026-12-06.json')));
  });

  it('refuses a malformed date with exit status 2', async () => {
    const r = await gw.cli(['tls-rpt', 'send', '--date', '12/06/2026']);
    assert.equal(r.code, 2, showCli(['tls-rpt', 'send'], r));
    assert.match(r.stderr, /not a date of the form YYYY-MM-DD/);
  });
});
