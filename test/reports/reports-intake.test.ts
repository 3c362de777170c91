// Reports about our mail, end to end through the running gateway: a local user sends to the
// world over submission (nodemailer, AUTH over STARTTLS), the mail reaches an smtp-server sink
// standing for the recipient's provider, and the provider's complaint (ARF, RFC 5965) about it
// comes back to abuse@ over port 25. `portcullis complaints list --json` must name the user,
// the original Message-ID and the reporting domain. DMARC aggregate and TLS-RPT reports to the
// postmaster, and hostile ones, show in `portcullis reports list`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { sharedDir } from '../helpers/paths.js';
import { USERS, userMap } from '../helpers/fixtures.js';
import { startGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { Sink } from '../helpers/sink.js';
import { mailer, sendRaw } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';
import { arfReport, dmarcMail, dmarcXml, reportMail, tlsRptJson, tlsRptMail } from '../helpers/report-fixtures.js';

interface ComplaintJson {
  id: number; user?: string; attributedBy?: string; messageId?: string; reporterDomain: string; verified: boolean; feedbackType: string; queueId?: string; client?: string;
}
interface ReportJson { id: number; kind: string; org: string; domain?: string; messages?: number; failed?: number; reason?: string }

describe('complaint, DMARC and TLS-RPT reports through the running gateway', { timeout: 180_000 }, () => {
  let gw: Gateway;
  let sink: Sink;
  let dns: DnsServer;

  before(async () => {
    sink = await Sink.start();
    // isp.example authenticates its reports (SPF for its bounce address, a DMARC record); the
    // reporters of the other tests do not.
    dns = await startDnsServer({
      'isp.example': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.1 -all' }],
      '_dmarc.isp.example': [{ type: 'TXT', data: 'v=DMARC1; p=reject' }],
    });
    gw = await startGateway({
      users: userMap('alice'),
      config: {
        dns: { servers: [dns.server] },
        relay: { routes: [{ domain: 'isp.example', host: '127.0.0.1', port: sink.port, tls: 'none' }] },
        reports: { addresses: [] },
      },
    });
  });
  after(async () => {
    await gw?.cleanup();
    await sink?.close();
    await dns?.close();
  });

  const complaints = async (args: string[] = []) => JSON.parse((await gw.cliOk(['complaints', 'list', '--json', ...args])).stdout) as ComplaintJson[];
  const reports = async (kind?: string) => JSON.parse((await gw.cliOk(['reports', 'list', '--json', ...(kind ? ['--kind', kind] : [])])).stdout) as ReportJson[];

  it('an ARF complaint about mail a local user sent is traced to that user, its Message-ID and the reporting domain', async () => {
    const transport = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: USERS.alice.address, pass: USERS.alice.password } });
    try {
      await transport.sendMail({
        from: USERS.alice.address, to: 'bob@isp.example', subject: 'Our offer for you', text: 'Hello Bob, here is our offer.',
        messageId: '<offer-e2e-1@example.test>',
      });
    } finally {
      transport.close();
    }
    const delivered = await sink.waitFor('offer-e2e-1@example.test');
    // The provider reports the message it received, headers and all (our Received with our queue id).
    const arf = arfReport({ from: 'fbl@unverified-isp.example', to: 'abuse@example.test', original: delivered.raw, mailFrom: USERS.alice.address, rcptTo: 'bob@isp.example', sourceIp: '127.0.0.1' });
    const sent = await sendRaw(gw.ports.mx, { from: 'fbl-bounces@unverified-isp.example', to: ['abuse@example.test'] }, arf);
    assert.deepEqual(sent, { ok: true });
    const [c] = await waitFor('the complaint in `portcullis complaints list`', async () => {
      const list = await complaints();
      return list.length ? list : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
    assert.equal(c!.user, USERS.alice.address);
    assert.equal(c!.attributedBy, 'queue-id');
    assert.equal(c!.messageId, 'offer-e2e-1@example.test');
    assert.equal(c!.reporterDomain, 'unverified-isp.example');
    assert.equal(c!.feedbackType, 'abuse');
    assert.equal(c!.verified, false, 'unverified-isp.example publishes no DMARC record: the report is not authenticated');
    assert.match(c!.client ?? '', /127\.0\.0\.1/);
    const shown = JSON.parse((await gw.cliOk(['complaints', 'show', String(c!.id)])).stdout) as { original: { subject?: string } };
    assert.equal(shown.original.subject, 'Our offer for you');
    assert.equal((await complaints(['--user', 'nobody@example.test'])).length, 0);
    // The report was delivered to the role mailbox as well: reading it loses nothing.
    assert.ok(gw.readMailbox('postmaster@example.test').map((m) => m.content.toString('latin1')).some((m) => m.includes('feedback-report')), 'the report is in the postmaster mailbox');
  });

  it('authenticated complaints about a user\'s mail lock its outbound mail at outbound.limits.baseline.complaints_per_week', async () => {
    const transport = mailer({ port: gw.ports.submission, requireTLS: true, auth: { user: USERS.alice.address, pass: USERS.alice.password } });
    try {
      await transport.sendMail({ from: USERS.alice.address, to: 'carl@isp.example', subject: 'Second offer', text: 'Hello Carl.', messageId: '<offer-e2e-2@example.test>' });
    } finally {
      transport.close();
    }
    const delivered = await sink.waitFor('offer-e2e-2@example.test');
    const before = (await complaints()).length;
    for (let i = 0; i < 3; i++) {
      const arf = arfReport({ from: 'fbl@isp.example', to: 'abuse@example.test', original: delivered.raw, rcptTo: 'carl@isp.example' });
      assert.deepEqual(await sendRaw(gw.ports.mx, { from: 'fbl-bounces@isp.example', to: ['abuse@example.test'] }, arf), { ok: true });
    }
    const list = await waitFor('three more complaints', async () => {
      const l = await complaints();
      return l.length >= before + 3 ? l : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
    assert.ok(list.slice(0, 3).every((c) => c.verified && c.user === USERS.alice.address && c.reporterDomain === 'isp.example'), JSON.stringify(list));
    const locks = await waitFor('the lock of alice', async () => {
      const l = JSON.parse((await gw.cliOk(['user', 'locks', '--json'])).stdout) as { subject: string; code: string; reason: string }[];
      return l.length ? l : undefined;
    }, { timeoutMs: 10_000, intervalMs: 300 });
    assert.deepEqual(locks.map((l) => [l.subject, l.code]), [[`user:${USERS.alice.address}`, 'complaints']]);
    assert.match(locks[0]!.reason, /3 complaint reports/);
    await gw.cliOk(['user', 'unlock', USERS.alice.address]);
  });

  it('the public ARF fixture (postal-mime\'s arf.eml) through SMTP: stored, not traced to anyone of ours', async (t) => {
    const file = path.join(sharedDir, 'conformance/mime/postal-mime/arf.eml');
    if (!fs.existsSync(file)) return t.skip('shared/conformance not present');
    const before = (await complaints()).length;
    assert.deepEqual(await sendRaw(gw.ports.mx, { from: 'abusedesk@example.com', to: ['abuse@example.test'] }, fs.readFileSync(file)), { ok: true });
    const list = await waitFor('the fixture complaint', async () => {
      const l = await complaints();
      return l.length > before ? l : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
    const c = list.find((x) => x.reporterDomain === 'example.com');
    assert.ok(c, JSON.stringify(list));
    assert.equal(c.user, undefined, 'somespammer@example.net is nobody of ours');
    assert.equal(c.feedbackType, 'abuse');
  });

  it('DMARC aggregate (zip) and TLS-RPT (gzip) reports are stored and summarised; a bomb is kept as unparsed', async () => {
    const xml = dmarcXml({ domain: 'example.test', reportId: 'e2e-dmarc-1', rows: [
      { ip: '192.0.2.25', count: 7, dkim: 'pass', spf: 'pass', headerFrom: 'example.test' },
      { ip: '203.0.113.50', count: 3, disposition: 'reject', dkim: 'fail', spf: 'fail', headerFrom: 'example.test' },
    ] });
    const mails = [
      await dmarcMail({ from: 'noreply-dmarc@acme.example', to: 'postmaster@example.test', xml, encoding: 'zip', domain: 'example.test', reportId: 'e2e-dmarc-1' }),
      tlsRptMail({ from: 'tlsrpt@company-x.example', to: 'postmaster@example.test', domain: 'example.test', json: tlsRptJson({ domain: 'example.test', success: 40, failure: 2, reportId: 'e2e-tls-1' }) }),
      reportMail({ from: 'x@bomb.example', to: 'postmaster@example.test', subject: 'Report Domain: example.test Submitter: bomb.example', type: 'application/gzip', filename: 'bomb.example!example.test!1!2.xml.gz', payload: zlib.gzipSync(Buffer.alloc(40 * 1024 * 1024)) }),
    ];
    for (const raw of mails) assert.deepEqual(await sendRaw(gw.ports.mx, { from: 'reports@reporter.example', to: ['postmaster@example.test'] }, raw), { ok: true });
    const all = await waitFor('three reports in `portcullis reports list`', async () => {
      const list = await reports();
      return list.length >= 3 ? list : undefined;
    }, { timeoutMs: 20_000, intervalMs: 300 });
    const dmarc = all.find((r) => r.kind === 'dmarc');
    assert.deepEqual([dmarc?.org, dmarc?.domain, dmarc?.messages, dmarc?.failed], ['acme.example', 'example.test', 10, 3]);
    const tls = all.find((r) => r.kind === 'tlsrpt');
    assert.deepEqual([tls?.org, tls?.messages, tls?.failed], ['Company-X', 42, 2]);
    const bomb = all.find((r) => r.kind === 'unparsed');
    assert.match(bomb?.reason ?? '', /dmarc: .*decompression bomb/);
    const detail = JSON.parse((await gw.cliOk(['reports', 'show', String(dmarc!.id)])).stdout) as { records: { sourceIp: string; count: number }[] };
    assert.deepEqual(detail.records.map((r) => [r.sourceIp, r.count]), [['192.0.2.25', 7], ['203.0.113.50', 3]]);
    assert.equal((await reports('tlsrpt')).length, 1);
    // Every report was delivered to the mailbox too, the unreadable one included.
    assert.equal(gw.readMailbox('postmaster@example.test').map((m) => m.content.toString('latin1')).filter((m) => /Report Domain: example\.test/.test(m)).length, 3);
  });

  it('the CLI answers bad input with a usage error naming the fault', async () => {
    const r = await gw.cli(['complaints', 'list', '--since', 'yesterday']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--since: "yesterday" is not a duration/);
    const k = await gw.cli(['reports', 'list', '--kind', 'arf']);
    assert.equal(k.code, 2);
    assert.match(k.stderr, /--kind: "arf" is not one of dmarc, tlsrpt, unparsed/);
    const missing = await gw.cli(['complaints', 'show', '99999']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no complaint 99999/);
  });
});
