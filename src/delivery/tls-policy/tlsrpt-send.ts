// Sending a day's TLS-RPT reports (RFC 8460 3 and 5): for each recipient domain counted that day,
// its `_smtp._tls` TXT record names where reports go; each https: URI gets an HTTPS POST of the
// gzip'd report (application/tlsrpt+gzip, 5.2), each mailto: URI a mail handed to the gateway's
// `submit` (its queue, so it goes out like any other mail and is DKIM-signed where the gateway
// signs, as 5.3 asks). A domain whose report went out to at least one address is marked sent
// for that day and not sent again.
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Resolver } from '../../dns/types.js';
import type { Logger } from '../../log.js';
import type { TlsRptStore } from './tlsrpt-aggregate.js';
import { buildReport, parseTlsRptRecord, reportMessage, type BuiltReport, type ReportIdentity, type Rua } from './tlsrpt-report.js';

export interface ReportEnvelope {
  readonly from: string;
  readonly to: readonly string[];
}

export interface TlsRptSenderOptions {
  readonly store: TlsRptStore;
  readonly resolver: Resolver;
  readonly logger: Logger;
  readonly identity: ReportIdentity;
  /** Envelope sender and From: of report mail. */
  readonly from: string;
  /** Hands a message to the gateway for delivery (its queue). */
  readonly submit: (envelope: ReportEnvelope, message: Buffer) => Promise<void>;
  readonly postTimeoutMs: number;
  /** Extra trust anchors (PEM) for HTTPS collectors, e.g. a test CA. */
  readonly ca?: readonly string[];
}

export interface SendOutcome {
  readonly domain: string;
  /** 'sent': to at least one rua; 'no-record': the domain asks for no reports; 'failed'; 'already-sent'. */
  readonly status: 'sent' | 'no-record' | 'failed' | 'already-sent';
  /** Per destination: "https://… ok", "mailto:… failed: reason". */
  readonly destinations: readonly string[];
}

export async function sendReports(date: string, opts: TlsRptSenderOptions): Promise<SendOutcome[]> {
  const day = opts.store.day(date);
  const out: SendOutcome[] = [];
  for (const domain of Object.keys(day.domains).sort()) {
    if (day.sent[domain]) {
      out.push({ domain, status: 'already-sent', destinations: [] });
      continue;
    }
    const txt = await opts.resolver.lookup(`_smtp._tls.${domain}`, 'TXT');
    const record = txt.status === 'ok' ? parseTlsRptRecord(txt.records.map((c) => c.join(''))) : { ok: false as const, reason: txt.status };
    if (!record.ok) {
      out.push({ domain, status: 'no-record', destinations: [] });
      continue;
    }
    const report = buildReport(day, domain, opts.identity);
    if (!report) continue;
    const destinations: string[] = [];
    let delivered = 0;
    for (const rua of record.rua) {
      const name = rua.kind === 'https' ? rua.url : `mailto:${rua.address}`;
      try {
        await deliver(report, rua, opts);
        delivered++;
        destinations.push(`${name} ok`);
      } catch (err) {
        destinations.push(`${name} failed: ${(err as Error).message}`);
      }
    }
    const status = delivered > 0 ? 'sent' : 'failed';
    if (delivered > 0) opts.store.markSent(date, domain, destinations.join('; '));
    opts.logger.info({ event: 'tls_rpt.report', date, domain, status, report_id: report.reportId, destinations }, 'TLS-RPT report');
    out.push({ domain, status, destinations });
  }
  opts.store.flush();
  return out;
}

async function deliver(report: BuiltReport, rua: Rua, opts: TlsRptSenderOptions): Promise<void> {
  if (rua.kind === 'mailto') {
    await opts.submit({ from: opts.from, to: [rua.address] }, reportMessage(report, opts.identity, opts.from, rua.address));
    return;
  }
  await post(rua.url, report.gzip, opts);
}

async function post(url: string, body: Buffer, opts: TlsRptSenderOptions): Promise<void> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let ip = host;
  if (!net.isIP(host)) {
    const a = await opts.resolver.lookup(host, 'A');
    const aaaa = a.status === 'ok' && a.records.length ? undefined : await opts.resolver.lookup(host, 'AAAA');
    const found = a.status === 'ok' && a.records.length ? a.records[0] : aaaa?.status === 'ok' ? aaaa.records[0] : undefined;
    if (!found) throw new Error(`${host}: no address`);
    ip = found;
  }
  await new Promise<void>((resolve, reject) => {
    const req = https.request({
      host: ip, port: u.port || 443, path: `${u.pathname}${u.search}`, method: 'POST', servername: net.isIP(host) ? undefined : host,
      headers: { host: u.host, 'content-type': 'application/tlsrpt+gzip', 'content-length': body.length, 'user-agent': 'portcullis-tlsrpt' },
      agent: false, minVersion: 'TLSv1.2',
      ca: opts.ca?.length ? [...tls.rootCertificates, ...opts.ca] : undefined,
      timeout: opts.postTimeoutMs,
    }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) resolve();
        else reject(new Error(`HTTP ${res.statusCode}`));
      });
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${opts.postTimeoutMs} ms`)), opts.postTimeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error(`idle for ${opts.postTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
