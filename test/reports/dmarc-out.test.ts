// DMARC aggregate reports we send, end to end: mail from sender.example reaches the gateway's MX
// (one message passing DMARC by aligned SPF, one failing it and refused by p=reject), the
// domain's record (served by a DNS server on loopback) asks for reports at a verified external
// destination and at one that never agreed, and `portcullis reports send-dmarc` hands the report
// to the queue, which delivers it to an smtp-server sink standing for the collector. The report
// that arrives is read back with our own reader (the same XML a provider's parser sees).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { Sink } from '../helpers/sink.js';
import { sendRaw } from '../helpers/clients.js';
import { classifyReport } from '../../src/reports/classify.js';
import { userMap } from '../helpers/fixtures.js';

const today = () => new Date().toISOString().slice(0, 10);
const message = (from: string, subject: string) =>
  `From: News <${from}>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@sender.example>\r\nDate: ${new Date().toUTCString()}\r\n\r\nHello there, this is a short note.\r\n`;

describe('DMARC aggregate reports out (reports.dmarc_out)', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let dns: DnsServer;

  before(async () => {
    sink = await Sink.start();
    dns = await startDnsServer({
      'sender.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }, { type: 'A', data: '127.0.0.1' }],
      '_dmarc.sender.example': [{ type: 'TXT', data: 'v=DMARC1; p=reject; rua=mailto:agg@collector.example!10m,mailto:agg@unverified.example' }],
      'sender.example._report._dmarc.collector.example': [{ type: 'TXT', data: 'v=DMARC1' }],
      'other.example': [{ type: 'TXT', data: 'v=spf1 ?all' }],
    });
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [dns.server] },
        relay: { routes: [{ domain: '*', host: '127.0.0.1', port: sink.port, tls: 'none' }] },
        reports: { dmarc_out: { enabled: true, org_name: 'Example Test Org', from: 'dmarc-reports@example.test' } },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
  });

  it('counts the day\'s evaluations and reports them only to the destination that agreed (RFC 7489 7.1)', async () => {
    const pass = await sendRaw(gw.ports.mx, { from: 'bounces@sender.example', to: ['alice@example.test'] }, message('news@sender.example', 'dmarc pass one'));
    assert.deepEqual(pass, { ok: true });
    const fail = await sendRaw(gw.ports.mx, { from: 'x@other.example', to: ['alice@example.test'] }, message('news@sender.example', 'dmarc fail one'));
    assert.equal(fail.ok, false);
    assert.match((fail as { text: string }).text, /^550 5\.7\.1 .*DMARC policy of sender\.example/, 'p=reject is enforced at DATA');

    const r = await gw.cliOk(['reports', 'send-dmarc', '--date', today(), '--json']);
    const outcomes = JSON.parse(r.stdout) as { domain: string; status: string; destinations: string[] }[];
    assert.equal(outcomes.length, 1, r.stdout);
    assert.equal(outcomes[0]!.domain, 'sender.example');
    assert.equal(outcomes[0]!.status, 'sent');
    assert.ok(outcomes[0]!.destinations.includes('mailto:agg@collector.example queued'), r.stdout);
    assert.ok(outcomes[0]!.destinations.some((d) => /agg@unverified\.example skipped: external destination not verified/.test(d)), r.stdout);

    const got = await sink.waitFor('Report Domain: sender.example');
    assert.deepEqual(got.rcptTo, ['agg@collector.example']);
    assert.equal(got.mailFrom, 'dmarc-reports@example.test');
    const read = await classifyReport(got.raw, { hostname: 'collector.test', maxReportBytes: 1 << 20 });
    assert.equal(read.kind, 'dmarc');
    if (read.kind !== 'dmarc') return;
    assert.equal(read.report.orgName, 'Example Test Org');
    assert.equal(read.report.domain, 'sender.example');
    assert.equal(read.report.policy.p, 'reject');
    const rows = read.report.records.map((x) => [x.sourceIp, x.count, x.disposition, x.dkim, x.spf, x.headerFrom]).sort();
    assert.deepEqual(rows, [
      ['127.0.0.1', 1, 'none', 'fail', 'pass', 'sender.example'],
      ['127.0.0.1', 1, 'reject', 'fail', 'fail', 'sender.example'],
    ]);
    assert.ok(read.report.records.some((x) => x.authSpf.includes('other.example=neutral')), JSON.stringify(read.report.records));

    const again = JSON.parse((await gw.cliOk(['reports', 'send-dmarc', '--date', today(), '--json'])).stdout) as { status: string }[];
    assert.deepEqual(again.map((o) => o.status), ['already-sent'], 'a domain\'s day is reported once');
    assert.equal(sink.messages.filter((m) => m.raw.includes('Report Domain: sender.example')).length, 1);
  });

  it('refuses a malformed date with a usage error', async () => {
    const r = await gw.cli(['reports', 'send-dmarc', '--date', '2026-13-45']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--date: "2026-13-45" is not a date/);
  });
});
