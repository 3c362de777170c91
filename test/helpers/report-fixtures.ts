// Report messages built for tests from the RFCs' examples: an ARF complaint (RFC 5965 appendix B
// shape), a DMARC aggregate report (RFC 7489 appendix C schema), a TLS-RPT report (RFC 8460
// section 4.8 example), each as a whole message with the payload plain, gzip'd or zipped.
import zlib from 'node:zlib';
import * as zip from '@zip.js/zip.js';

const CRLF = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (b: Buffer) => b.toString('base64').replace(/.{1,76}/g, (l) => `${l}\r\n`);

export function arfReport(o: {
  from: string; to: string; original: Buffer | string; feedbackType?: string; sourceIp?: string; mailFrom?: string; rcptTo?: string;
  headersOnly?: boolean; subject?: string;
}): Buffer {
  const original = typeof o.original === 'string' ? o.original : o.original.toString('latin1');
  const part = o.headersOnly ? `Content-Type: text/rfc822-headers\n\n${original.split(/\r?\n\r?\n/)[0]}\n` : `Content-Type: message/rfc822\nContent-Disposition: inline\n\n${original}\n`;
  return Buffer.from(CRLF(`From: <${o.from}>
Date: Thu, 8 Mar 2026 17:40:36 -0500
Subject: ${o.subject ?? 'FW: Earn money'}
To: <${o.to}>
Message-ID: <arf-${Math.random().toString(36).slice(2)}@${o.from.split('@')[1]}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
${o.sourceIp ?? '192.0.2.1'} on Thu, 8 Mar 2026 14:00:00 EDT.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: ${o.feedbackType ?? 'abuse'}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <${o.mailFrom ?? 'somespammer@example.net'}>
Original-Rcpt-To: <${o.rcptTo ?? 'user@example.com'}>
Arrival-Date: Thu, 8 Mar 2026 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: ${o.sourceIp ?? '192.0.2.1'}
Reported-Domain: example.net

--part1_13d.2e68ed54_boundary
${part}
--part1_13d.2e68ed54_boundary--
`), 'latin1');
}

export interface DmarcRow {
  ip: string; count: number; disposition?: string; dkim: 'pass' | 'fail'; spf: 'pass' | 'fail'; headerFrom: string;
}

export function dmarcXml(o: { org?: string; reportId?: string; domain: string; rows: DmarcRow[]; begin?: number; end?: number; bis?: boolean }): string {
  const rows = o.rows.map((r) => `  <record>
    <row>
      <source_ip>${r.ip}</source_ip>
      <count>${r.count}</count>
      <policy_evaluated>
        <disposition>${r.disposition ?? 'none'}</disposition>
        <dkim>${r.dkim}</dkim>
        <spf>${r.spf}</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>${r.headerFrom}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>${r.headerFrom}</domain>
        <result>${r.dkim}</result>
        <selector>s1</selector>
      </dkim>
      <spf>
        <domain>${r.headerFrom}</domain>
        <result>${r.spf}</result>
      </spf>
    </auth_results>
  </record>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8" ?>
<feedback${o.bis ? ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' : ''}>
  ${o.bis ? '<version>2.0</version>' : ''}
  <report_metadata>
    <org_name>${o.org ?? 'acme.example'}</org_name>
    <email>noreply-dmarc-support@acme.example</email>
    <report_id>${o.reportId ?? '9391651994964116463'}</report_id>
    <date_range>
      <begin>${o.begin ?? 1335571200}</begin>
      <end>${o.end ?? 1335657599}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>${o.domain}</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>reject</p>
    <sp>reject</sp>
    <pct>100</pct>
  </policy_published>
${rows}
</feedback>
`;
}

export async function zipOf(name: string, data: Buffer): Promise<Buffer> {
  const writer = new zip.ZipWriter(new zip.Uint8ArrayWriter(), { useWebWorkers: false });
  await writer.add(name, new zip.Uint8ArrayReader(data));
  return Buffer.from(await writer.close());
}

/** A report mail with one attached payload. */
export function reportMail(o: { from: string; to: string; subject: string; type: string; filename: string; payload: Buffer; extraHeaders?: string }): Buffer {
  return Buffer.from(CRLF(`From: <${o.from}>
To: <${o.to}>
Subject: ${o.subject}
Date: Fri, 27 Apr 2026 00:00:00 +0000
Message-ID: <rpt-${Math.random().toString(36).slice(2)}@${o.from.split('@')[1]}>
MIME-Version: 1.0
${o.extraHeaders ?? ''}Content-Type: multipart/mixed; boundary="rpt-boundary"

--rpt-boundary
Content-Type: text/plain; charset=us-ascii

This is an aggregate report.

--rpt-boundary
Content-Type: ${o.type}; name="${o.filename}"
Content-Disposition: attachment; filename="${o.filename}"
Content-Transfer-Encoding: base64

`) + b64(o.payload) + '\r\n--rpt-boundary--\r\n', 'latin1');
}

export async function dmarcMail(o: { from: string; to: string; xml: string; encoding: 'gzip' | 'zip' | 'xml'; domain: string; reportId?: string }): Promise<Buffer> {
  const base = `acme.example!${o.domain}!1335571200!1335657599`;
  const raw = Buffer.from(o.xml, 'utf8');
  const [type, filename, payload] = o.encoding === 'gzip' ? ['application/gzip', `${base}.xml.gz`, zlib.gzipSync(raw)]
    : o.encoding === 'zip' ? ['application/zip', `${base}.zip`, await zipOf(`${base}.xml`, raw)]
      : ['text/xml', `${base}.xml`, raw];
  return reportMail({ from: o.from, to: o.to, subject: `Report Domain: ${o.domain} Submitter: acme.example Report-ID: <${o.reportId ?? '9391651994964116463'}>`, type, filename, payload });
}

/** RFC 8460 4.8's example, with our domain and counts. */
export function tlsRptJson(o: { domain: string; success: number; failure: number; reportId?: string }): string {
  return JSON.stringify({
    'organization-name': 'Company-X',
    'date-range': { 'start-datetime': '2026-04-26T00:00:00Z', 'end-datetime': '2026-04-26T23:59:59Z' },
    'contact-info': 'sts-reporting@company-x.example',
    'report-id': o.reportId ?? '5065427c-23d3-47ca-b6e0-946ea0e8c4be',
    policies: [{
      policy: { 'policy-type': 'sts', 'policy-string': ['version: STSv1', 'mode: testing', `mx: *.mail.${o.domain}`, 'max_age: 86400'], 'policy-domain': o.domain, 'mx-host': [`*.mail.${o.domain}`] },
      summary: { 'total-successful-session-count': o.success, 'total-failure-session-count': o.failure },
      'failure-details': o.failure ? [{ 'result-type': 'certificate-expired', 'sending-mta-ip': '2001:db8:abcd:0012::1', 'receiving-mx-hostname': `mx1.mail.${o.domain}`, 'failed-session-count': o.failure }] : [],
    }],
  });
}

export function tlsRptMail(o: { from: string; to: string; domain: string; json: string }): Buffer {
  return reportMail({
    from: o.from, to: o.to, subject: `Report Domain: ${o.domain} Submitter: company-x.example Report-ID: <5065427c>`,
    type: 'application/tlsrpt+gzip', filename: `company-x.example!${o.domain}!1714089600!1714175999!001.json.gz`,
    payload: zlib.gzipSync(Buffer.from(o.json)), extraHeaders: `TLS-Report-Domain: ${o.domain}\nTLS-Report-Submitter: company-x.example\n`,
  });
}
