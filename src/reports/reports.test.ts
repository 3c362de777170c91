// The report readers on the RFCs' examples and on hostile input: what each report type yields,
// how a complaint is attributed, and that bombs, entities and garbage become "unparsed" with a
// reason instead of a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { classifyReport, portcullisQueueIds, headerFields } from './classify.js';
import { decodePayload, ReportDecodeError } from './decode.js';
import { parseDmarcAggregate, DmarcReportError } from './dmarc-xml.js';
import { ReportsStore } from './store.js';
import { ReportIntake } from './intake.js';
import { reportsConfigSchema } from './config.js';
import { arfReport, dmarcMail, dmarcXml, reportMail, tlsRptJson, tlsRptMail, zipOf } from '../../test/helpers/report-fixtures.js';
import { sharedDir } from '../../test/helpers/paths.js';
import { silentLogger } from '../log.js';

const HOST = 'mx.example.org';
const opts = { hostname: HOST, maxReportBytes: 1024 * 1024 };
const ORIGINAL = 'Received: from laptop (unknown [198.51.100.7])\r\n\tby mx.example.org (Portcullis) with ESMTPSA id 7Hq2Kx9ZaB;\r\n\tMon, 7 Dec 2026 10:00:00 +0000\r\n' +
  'From: Alice <alice@example.org>\r\nTo: bob@remote.example\r\nSubject: Our offer\r\nMessage-ID: <offer-1@example.org>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nHello\r\n';

test('an ARF report (RFC 5965) from the postal-mime fixture is a complaint with its fields and original', async (t) => {
  const file = path.join(sharedDir, 'conformance/mime/postal-mime/arf.eml');
  if (!fs.existsSync(file)) return t.skip('shared/conformance not present');
  const r = await classifyReport(fs.readFileSync(file), opts);
  assert.equal(r.kind, 'complaint');
  if (r.kind !== 'complaint') return;
  assert.equal(r.complaint.format, 'arf');
  assert.equal(r.complaint.feedbackType, 'abuse');
  assert.equal(r.complaint.sourceIp, '192.0.2.1');
  assert.equal(r.complaint.userAgent, 'SomeGenerator/1.0');
  assert.deepEqual(r.complaint.originalRcptTo, ['user@example.com']);
  assert.deepEqual(r.complaint.reportedDomains, ['example.net']);
  assert.equal(r.complaint.original.mailFrom, 'somespammer@example.net');
  // The fixture's original has an empty line after its Received field: the rest is its body.
  assert.equal(r.complaint.original.from, '<somespammer@example.net>');
  assert.equal(r.reporter.address, 'abusedesk@example.com');
  assert.equal(r.reporter.domain, 'example.com');
  assert.equal(r.reporter.verified, false, 'no Authentication-Results of ours: not verified');
});

test('our queue id is read from the Received trail of the reported message, headers-only or whole', async () => {
  for (const headersOnly of [false, true]) {
    const r = await classifyReport(arfReport({ from: 'fbl@isp.example', to: 'abuse@example.org', original: ORIGINAL, headersOnly }), opts);
    assert.equal(r.kind, 'complaint');
    if (r.kind !== 'complaint') return;
    assert.deepEqual(r.complaint.original.queueIds, ['7Hq2Kx9ZaB']);
    assert.equal(r.complaint.original.messageId, 'offer-1@example.org');
  }
  assert.deepEqual(portcullisQueueIds(headerFields(Buffer.from('Received: from x by other.example (Postfix) with ESMTP id ABC;\r\n\r\n'))), []);
});

test('a report counts as verified only when OUR topmost Authentication-Results says dmarc=pass for its From domain', async () => {
  const arf = arfReport({ from: 'fbl@isp.example', to: 'abuse@example.org', original: ORIGINAL });
  const ours = (v: string) => Buffer.concat([Buffer.from(`Authentication-Results: ${HOST};\r\n\t${v}\r\n`), arf]);
  const verified = async (b: Buffer) => (await classifyReport(b, opts)).reporter.verified;
  assert.equal(await verified(ours('dkim=pass header.d=isp.example; dmarc=pass (p=reject) header.from=isp.example')), true);
  assert.equal(await verified(ours('dmarc=fail (p=reject) header.from=isp.example')), false);
  assert.equal(await verified(ours('dmarc=pass header.from=isp.example.evil')), false, 'a longer domain is not the From domain');
  assert.equal(await verified(Buffer.concat([Buffer.from('Authentication-Results: forger.example; dmarc=pass header.from=isp.example\r\n'), arf])), false, 'somebody else\'s A-R is not ours');
});

test('a forwarded original (the non-ARF form) is a complaint; a DSN or plain mail to abuse@ is none', async () => {
  const fwd = Buffer.from('From: someone@remote.example\r\nTo: abuse@example.org\r\nSubject: Fwd: spam from you\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlease stop.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n' + ORIGINAL + '\r\n--b--\r\n');
  const r = await classifyReport(fwd, opts);
  assert.equal(r.kind, 'complaint');
  if (r.kind === 'complaint') {
    assert.equal(r.complaint.format, 'forwarded');
    assert.deepEqual(r.complaint.original.queueIds, ['7Hq2Kx9ZaB']);
  }
  const plain = Buffer.from('From: a@remote.example\r\nTo: abuse@example.org\r\nSubject: question\r\n\r\nHello, who runs this server?\r\n');
  assert.equal((await classifyReport(plain, opts)).kind, 'none');
  const dsnFile = path.join(sharedDir, 'conformance/mime/mailparser/delivery-status.eml');
  if (fs.existsSync(dsnFile)) assert.equal((await classifyReport(fs.readFileSync(dsnFile), opts)).kind, 'none', 'a bounce is not a complaint');
});

test('DMARC aggregate reports are read plain, gzip and zip, in both the RFC 7489 and the DMARCbis form', async () => {
  const rows = [
    { ip: '192.0.2.25', count: 2, dkim: 'pass' as const, spf: 'pass' as const, headerFrom: 'example.org' },
    { ip: '203.0.113.9', count: 5, disposition: 'reject', dkim: 'fail' as const, spf: 'fail' as const, headerFrom: 'example.org' },
  ];
  for (const encoding of ['xml', 'gzip', 'zip'] as const) {
    for (const bis of [false, true]) {
      const mail = await dmarcMail({ from: 'noreply-dmarc@acme.example', to: 'dmarc@example.org', xml: dmarcXml({ domain: 'example.org', rows, bis }), encoding, domain: 'example.org' });
      const r = await classifyReport(mail, opts);
      assert.equal(r.kind, 'dmarc', `${encoding} bis=${bis}`);
      if (r.kind !== 'dmarc') continue;
      assert.equal(r.report.format, bis ? 'dmarcbis' : 'rfc7489');
      assert.equal(r.report.domain, 'example.org');
      assert.equal(r.report.orgName, 'acme.example');
      assert.equal(r.report.policy.p, 'reject');
      assert.equal(r.report.records.length, 2);
      assert.deepEqual(r.report.records[1], {
        sourceIp: '203.0.113.9', count: 5, disposition: 'reject', dkim: 'fail', spf: 'fail', headerFrom: 'example.org',
        authDkim: ['example.org=fail'], authSpf: ['example.org=fail'],
      });
    }
  }
});

test('hostile XML is refused with a reason: external entities, billion laughs, garbage, no <feedback>', () => {
  const xxe = '<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback><report_metadata><report_id>&xxe;</report_id></report_metadata></feedback>';
  assert.throws(() => parseDmarcAggregate(Buffer.from(xxe)), (e: Error) => e instanceof DmarcReportError && /document type or entities/.test(e.message));
  const laughs = '<?xml version="1.0"?>\n<!-- a comment -->\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><feedback>&lol2;</feedback>';
  assert.throws(() => parseDmarcAggregate(Buffer.from(laughs)), DmarcReportError);
  assert.throws(() => parseDmarcAggregate(Buffer.from('<feedback><report_metadata>')), DmarcReportError);
  assert.throws(() => parseDmarcAggregate(Buffer.from('<html><body>hi</body></html>')), /no <feedback>/);
  assert.throws(() => parseDmarcAggregate(Buffer.from('<feedback><report_metadata><report_id>1</report_id></report_metadata></feedback>')), /no domain/);
});

test('decompression is bounded: a gzip or zip bomb is refused after at most the limit', async () => {
  const big = Buffer.alloc(30 * 1024 * 1024);
  await assert.rejects(decodePayload(zlib.gzipSync(big), 1024 * 1024, '.xml'), (e: Error) => e instanceof ReportDecodeError && /decompression bomb/.test(e.message));
  await assert.rejects(decodePayload(await zipOf('r.xml', big), 1024 * 1024, '.xml'), /decompression bomb/);
  await assert.rejects(decodePayload(Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), 1024, '.xml'), /corrupt gzip/);
  await assert.rejects(decodePayload(Buffer.from('PK\u0003\u0004garbage'), 1024, '.xml'), /corrupt zip/);
  assert.equal((await decodePayload(Buffer.from('<feedback/>'), 1024, '.xml')).toString(), '<feedback/>');
});

test('a DMARC report that cannot be read comes back unparsed with the reason (never thrown)', async () => {
  const bomb = reportMail({ from: 'x@acme.example', to: 'dmarc@example.org', subject: 'Report Domain: example.org', type: 'application/gzip', filename: 'acme!example.org!1!2.xml.gz', payload: zlib.gzipSync(Buffer.alloc(5 * 1024 * 1024)) });
  const r = await classifyReport(bomb, opts);
  assert.equal(r.kind, 'unparsed');
  if (r.kind === 'unparsed') {
    assert.equal(r.type, 'dmarc');
    assert.match(r.reason, /decompression bomb/);
  }
  const truncated = reportMail({ from: 'x@acme.example', to: 'dmarc@example.org', subject: 'Report Domain: example.org', type: 'text/xml', filename: 'r.xml', payload: Buffer.from(dmarcXml({ domain: 'example.org', rows: [] }).slice(0, 200)) });
  const t2 = await classifyReport(truncated, opts);
  assert.equal(t2.kind, 'unparsed');
});

test('TLS-RPT reports (RFC 8460) are read from application/tlsrpt+gzip', async () => {
  const r = await classifyReport(tlsRptMail({ from: 'tlsrpt@company-x.example', to: 'tlsrpt@example.org', domain: 'example.org', json: tlsRptJson({ domain: 'example.org', success: 100, failure: 3 }) }), opts);
  assert.equal(r.kind, 'tlsrpt');
  if (r.kind !== 'tlsrpt') return;
  assert.equal(r.report.orgName, 'Company-X');
  assert.deepEqual(r.report.policies.map((p) => [p.policyDomain, p.policyType, p.success, p.failure, p.failures]), [['example.org', 'sts', 100, 3, ['certificate-expired x3']]]);
  const bad = await classifyReport(tlsRptMail({ from: 'tlsrpt@company-x.example', to: 'tlsrpt@example.org', domain: 'example.org', json: '{"report-id": 1' }), opts);
  assert.equal(bad.kind, 'unparsed');
});

test('the store attributes a complaint by queue id, then Message-ID, then a local sender; keeps one copy of a report; prunes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reports-'));
  let now = Date.parse('2026-12-07T10:00:00Z');
  const store = ReportsStore.open(path.join(dir, 'reports.db'), { now: () => now });
  try {
    store.recordSent({ queueId: '7Hq2Kx9ZaB', messageId: 'offer-1@example.org', user: 'alice@example.org', client: '198.51.100.7', sender: 'alice@example.org', at: now });
    store.recordSent({ queueId: 'Other00001', messageId: 'second@example.org', user: 'carol@example.org', sender: 'carol@example.org', at: now });
    const local = (a: string) => (a === 'dave@example.org' ? a : undefined);
    const c = (original: object) => ({ format: 'arf' as const, feedbackType: 'abuse', originalRcptTo: [], reportedDomains: [], original: { queueIds: [], ...original } });
    assert.deepEqual(store.attribute(c({ queueIds: ['7Hq2Kx9ZaB'] }), local), { user: 'alice@example.org', attributedBy: 'queue-id', client: '198.51.100.7', queueId: '7Hq2Kx9ZaB' });
    assert.equal(store.attribute(c({ messageId: 'second@example.org' }), local).user, 'carol@example.org');
    assert.deepEqual(store.attribute(c({ from: 'Dave <dave@example.org>' }), local), { user: 'dave@example.org', attributedBy: 'sender' });
    assert.deepEqual(store.attribute(c({ from: 'x@else.example' }), local), {});
    const reporter = { address: 'fbl@isp.example', domain: 'isp.example', verified: true, subject: 'complaint' };
    store.addComplaint(reporter, c({ queueIds: ['7Hq2Kx9ZaB'], messageId: 'offer-1@example.org' }), store.attribute(c({ queueIds: ['7Hq2Kx9ZaB'] }), local));
    assert.equal(store.complaintCount('alice@example.org', now - 1000), 1);
    assert.equal(store.complaints({ user: 'Alice@Example.org' })[0]!.messageId, 'offer-1@example.org');
    const report = parseDmarcAggregate(Buffer.from(dmarcXml({ domain: 'example.org', rows: [{ ip: '192.0.2.25', count: 3, dkim: 'fail', spf: 'fail', headerFrom: 'example.org' }] })));
    const id = store.addDmarc(reporter, report, false);
    assert.ok(id);
    assert.equal(store.addDmarc(reporter, report, false), undefined, 'the same org and report id is stored once');
    const shown = store.report(id!);
    assert.equal(shown?.failed, 3);
    assert.equal(shown?.records?.[0]?.sourceIp, '192.0.2.25');
    now += 200 * 86_400_000;
    assert.ok(store.purge(180 * 86_400_000) >= 4);
    assert.equal(store.complaints().length, 0);
    assert.equal(store.report(id!), undefined);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the intake alerts once when a report shows our own domain failing DMARC from our own address', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reports-'));
  const store = ReportsStore.open(path.join(dir, 'reports.db'));
  const alerts: string[] = [];
  const intake = new ReportIntake({
    store, config: reportsConfigSchema.parse({}), hostname: HOST, isReportMailbox: (m) => m === 'postmaster@example.org',
    localSender: () => undefined, ownDomains: ['example.org'], ownAddresses: new Set(['192.0.2.25']), logger: silentLogger(),
    alert: async (subject, text) => void alerts.push(`${subject}\n${text}`),
  });
  try {
    const xml = dmarcXml({ domain: 'example.org', rows: [
      { ip: '192.0.2.25', count: 4, dkim: 'fail', spf: 'fail', headerFrom: 'example.org' },
      { ip: '203.0.113.9', count: 50, dkim: 'fail', spf: 'fail', headerFrom: 'example.org' },
    ] });
    const mail = await dmarcMail({ from: 'noreply@acme.example', to: 'postmaster@example.org', xml, encoding: 'gzip', domain: 'example.org' });
    const msg = (id: string) => ({ id, sender: 'noreply@acme.example', authenticated: false, arrived: Date.now(), meta: {} });
    const content = { size: mail.length, buffers: [mail], stream: () => { throw new Error('not used'); } };
    intake.delivered(msg('Q1'), 'postmaster@example.org', content);
    intake.delivered(msg('Q1'), 'postmaster@example.org', content);
    intake.delivered(msg('Q2'), 'postmaster@example.org', content);
    intake.delivered(msg('Q3'), 'alice@example.org', content);
    await intake.idle();
    assert.equal(store.reports({ kind: 'dmarc' }).length, 1, 'the second copy is the same report');
    assert.equal(alerts.length, 1);
    assert.match(alerts[0]!, /192\.0\.2\.25: 4 message/);
    assert.doesNotMatch(alerts[0]!, /203\.0\.113\.9/, 'spoofing from elsewhere is what DMARC is for, not an alert');
    assert.match(alerts[0]!, /NOT authenticated/);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
