// TLS-RPT (RFC 8460) end to end through the real parts: attempts recorded through the policy
// (DANE and no-policy domains from the loopback DNS server), the aggregate persisted across a
// restart, the day's report found through _smtp._tls, POSTed to a loopback HTTPS collector
// (test CA) and mailed through nodemailer to an smtp-server sink, then read back with an
// independent MIME parser (postal-mime) and checked against the fields of RFC 8460 4.4.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import zlib from 'node:zlib';
import nodemailer from 'nodemailer';
import PostalMime from 'postal-mime';
import { createResolver } from '../../dns/resolver.js';
import { silentLogger } from '../../log.js';
import { outboundTlsConfigSchema } from './config.js';
import { createOutboundTlsPolicy, type Submit } from './outbound-tls-policy.js';
import { parseTlsRptRecord } from './tlsrpt-report.js';
import { startDnsServer, type DnsServer } from '../../../test/helpers/dns-server.js';
import { createTestPki, type TestPki } from '../../../test/helpers/test-pki.js';
import { Sink } from '../../../test/helpers/sink.js';

const COLLECTOR = '127.0.0.144';
let pki: TestPki;
let dns: DnsServer;
let collector: https.Server;
const posts: { type?: string; body: Buffer; host?: string; url?: string }[] = [];
let sink: Sink;

before(async () => {
  pki = createTestPki();
  const cert = pki.issue('collector.reports.test');
  collector = https.createServer({ key: cert.key, cert: cert.chain }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ type: req.headers['content-type'], body: Buffer.concat(chunks), host: req.headers.host, url: req.url });
      res.writeHead(req.method === 'POST' && req.url === '/v1/tlsrpt' ? 201 : 503).end();
    });
  });
  await new Promise<void>((resolve, reject) => collector.once('error', reject).listen(443, COLLECTOR, resolve));
  sink = await Sink.start();
  dns = await startDnsServer({
    'dane.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.dane.test' } }],
    'mx.dane.test': [{ type: 'A', data: '127.0.0.1' }],
    '_25._tcp.mx.dane.test': [{ type: 'TLSA', data: { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 7) } }],
    '_smtp._tls.dane.test': [{ type: 'TXT', data: 'v=TLSRPTv1; rua=mailto:tlsrpt@reports.test,https://collector.reports.test/v1/tlsrpt' }],
    'collector.reports.test': [{ type: 'A', data: COLLECTOR }],
    'plain.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.plain.test' } }],
    '_smtp._tls.down.test': [{ type: 'TXT', data: 'v=TLSRPTv1; rua=https://collector.reports.test/down' }],
  }, { adFor: (n) => n.includes('dane.test') });
});

after(async () => {
  collector?.closeAllConnections();
  await new Promise((r) => collector?.close(r));
  await sink?.close();
  await dns?.close();
  pki?.remove();
});

test('the _smtp._tls record: one v=TLSRPTv1 record, mailto: and https: URIs', () => {
  assert.deepEqual(parseTlsRptRecord(['v=TLSRPTv1; rua=mailto:a@b.example, https://r.example/x']),
    { ok: true, rua: [{ kind: 'mailto', address: 'a@b.example' }, { kind: 'https', url: 'https://r.example/x' }] });
  assert.equal(parseTlsRptRecord(['v=TLSRPTv1;rua=mailto:a@b.example', 'v=TLSRPTv1;rua=mailto:c@d.example']).ok, false);
  assert.equal(parseTlsRptRecord(['v=TLSRPTv1']).ok, false);
  assert.equal(parseTlsRptRecord(['v=TLSRPTv1; rua=ftp://x.example/']).ok, false);
  assert.equal(parseTlsRptRecord(['v=spf1 -all']).ok, false);
});

test('attempts are aggregated per domain and policy per UTC day, kept across a restart, reported by HTTPS and mail', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tlsrpt-'));
  let clock = Date.parse('2026-12-06T10:00:00Z');
  const make = () => createOutboundTlsPolicy({
    config: outboundTlsConfigSchema.parse({ tls_rpt: { organization: 'Example Org', contact: 'tls@example.org' } }),
    resolver: createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, maxInflight: 50, cacheEntries: 0, maxTtlMs: 60_000, negativeTtlMs: 1000, dnssecValidating: true }),
    dnssecValidating: true, dataDir, logger: silentLogger(), hostname: 'gw.example.org', ca: [pki.root], now: () => clock,
  });
  const first = make();
  const dane = await first.forHost('dane.test', 'mx.dane.test');
  assert.equal(dane.policyType, 'tlsa');
  const plain = await first.forHost('plain.test', 'mx.plain.test');
  const attempt = { domain: 'dane.test', mxHost: 'mx.dane.test', receivingIp: '127.0.0.1', sendingIp: '127.0.0.9', policy: dane } as const;
  for (let i = 0; i < 3; i++) first.record({ ...attempt, result: 'success' });
  first.record({ ...attempt, result: 'tlsa-invalid', detail: 'no TLSA record matches' });
  first.record({ ...attempt, result: 'tlsa-invalid', detail: 'no TLSA record matches' });
  first.record({ domain: 'plain.test', mxHost: 'mx.plain.test', receivingIp: '127.0.0.2', sendingIp: '127.0.0.9', policy: plain, result: 'starttls-not-supported' });
  first.record({ domain: 'down.test', mxHost: 'mx.down.test', receivingIp: '127.0.0.3', sendingIp: '127.0.0.9', policy: plain, result: 'success' });
  // The next day's attempts belong to the next day's report.
  clock = Date.parse('2026-12-07T00:00:01Z');
  first.record({ ...attempt, result: 'success' });
  first.close();

  // After a restart the aggregate is read back from the data directory.
  const second = make();
  clock = Date.parse('2026-12-07T01:00:00Z');
  const mails: { envelope: { from: string; to: readonly string[] }; size: number }[] = [];
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: sink.port, secure: false, ignoreTLS: true });
  const submit: Submit = async (envelope, message) => {
    mails.push({ envelope, size: message.length });
    await transport.sendMail({ envelope: { from: envelope.from, to: [...envelope.to] }, raw: message });
  };
  const outcomes = await second.sendReports(submit);
  const byDomain = Object.fromEntries(outcomes.map((o) => [o.domain, o]));
  assert.deepEqual(Object.keys(byDomain).sort(), ['dane.test', 'down.test', 'plain.test']);
  assert.equal(byDomain['dane.test']!.status, 'sent', byDomain['dane.test']!.destinations.join('\n'));
  assert.deepEqual(byDomain['dane.test']!.destinations, ['mailto:tlsrpt@reports.test ok', 'https://collector.reports.test/v1/tlsrpt ok']);
  assert.equal(byDomain['plain.test']!.status, 'no-record');
  assert.equal(byDomain['down.test']!.status, 'failed');
  assert.match(byDomain['down.test']!.destinations[0]!, /HTTP 503/);

  // The HTTPS POST: application/tlsrpt+gzip, the Host of the rua URI, a gzip'd RFC 8460 report.
  const post = posts.find((p) => p.url === '/v1/tlsrpt')!;
  assert.equal(post.type, 'application/tlsrpt+gzip');
  assert.equal(post.host, 'collector.reports.test');
  const report = JSON.parse(zlib.gunzipSync(post.body).toString('utf8'));
  assert.equal(report['organization-name'], 'Example Org');
  assert.equal(report['contact-info'], 'tls@example.org');
  assert.deepEqual(report['date-range'], { 'start-datetime': '2026-12-06T00:00:00Z', 'end-datetime': '2026-12-06T23:59:59Z' });
  assert.match(report['report-id'], /^2026-12-06\.dane\.test\.[0-9a-f]{12}@gw\.example\.org$/);
  assert.equal(report.policies.length, 1);
  const [p0] = report.policies;
  assert.deepEqual(p0.policy, { 'policy-type': 'tlsa', 'policy-string': [`3 1 1 ${'07'.repeat(32)}`], 'policy-domain': 'mx.dane.test', 'mx-host': ['mx.dane.test'] });
  assert.deepEqual(p0.summary, { 'total-successful-session-count': 3, 'total-failure-session-count': 2 });
  assert.deepEqual(p0['failure-details'], [{
    'result-type': 'tlsa-invalid', 'sending-mta-ip': '127.0.0.9', 'receiving-mx-hostname': 'mx.dane.test', 'receiving-ip': '127.0.0.1',
    'failed-session-count': 2, 'failure-reason-code': 'no TLSA record matches',
  }]);
  // Only the fields RFC 8460 4.4 defines.
  assert.deepEqual(Object.keys(report).sort(), ['contact-info', 'date-range', 'organization-name', 'policies', 'report-id']);

  // The mail (RFC 8460 5.3), as the sink received it and an independent parser reads it.
  assert.deepEqual(mails.map((m) => m.envelope), [{ from: 'noreply-tlsrpt@gw.example.org', to: ['tlsrpt@reports.test'] }]);
  const received = await sink.waitFor('TLS-Report-Domain: dane.test');
  assert.deepEqual(received.rcptTo, ['tlsrpt@reports.test']);
  const parsed = await PostalMime.parse(received.raw);
  const header = (k: string) => parsed.headers.find((h) => h.key === k)?.value;
  assert.equal(header('tls-report-domain'), 'dane.test');
  assert.equal(header('tls-report-submitter'), 'gw.example.org');
  assert.match(header('content-type') ?? '', /^multipart\/report;\s*report-type="tlsrpt"/);
  assert.match(parsed.subject ?? '', /^Report Domain: dane\.test\s+Submitter: gw\.example\.org\s+Report-ID: <2026-12-06\.dane\.test\.[0-9a-f]{12}@gw\.example\.org>$/);
  const attachment = parsed.attachments.find((a) => a.mimeType === 'application/tlsrpt+gzip');
  assert.ok(attachment, 'the gzip attached');
  assert.match(attachment.filename ?? '', /^gw\.example\.org!dane\.test!1796515200!1796601599!/);
  const mailed = JSON.parse(zlib.gunzipSync(Buffer.from(attachment.content as ArrayBuffer)).toString('utf8'));
  assert.deepEqual(mailed.policies, report.policies);

  // Sent once: a second run sends nothing again except the domain whose collector failed.
  const again = await second.sendReports(submit, '2026-12-06');
  assert.deepEqual(Object.fromEntries(again.map((o) => [o.domain, o.status])), { 'dane.test': 'already-sent', 'down.test': 'failed', 'plain.test': 'already-sent' });
  assert.equal(mails.length, 1);
  // The new day holds the one attempt made after midnight.
  const today = await second.sendReports(submit, '2026-12-07');
  assert.equal(today.find((o) => o.domain === 'dane.test')?.status, 'sent');
  const latest = JSON.parse(zlib.gunzipSync(posts.filter((p) => p.url === '/v1/tlsrpt').at(-1)!.body).toString('utf8'));
  assert.deepEqual(latest.policies[0].summary, { 'total-successful-session-count': 1, 'total-failure-session-count': 0 });
  transport.close();
  second.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});
