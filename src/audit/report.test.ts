// The reports: severities, order, exit status; the terminal layout; the HTML page self-contained
// and safe with hostile text in the evidence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditReport } from './audit.js';
import { cleanEvidence, countBySeverity, exitStatusFor, sortFindings, worstSeverity, type Finding } from './findings.js';
import { escapeHtml, renderHtml } from './report-html.js';
import { renderText } from './report-text.js';

const findings: Finding[] = [
  { code: 'RDNS_OK', area: 'naming', severity: 'ok', target: 'mx.example.org [192.0.2.1]', evidence: 'PTR of 192.0.2.1: mx.example.org', title: 'Forward-confirmed reverse DNS: mx.example.org' },
  { code: 'RELAY_OPEN', area: 'relay', severity: 'critical', target: 'mx.example.org [192.0.2.1]:25 (smtp)', evidence: 'RCPT TO:<relaytest@example.com> → 250 2.1.5 <script>alert("x")</script> & more', title: 'Open relay: accepts <mail> for another domain', fix: 'Relay only for "your" users.' },
  { code: 'SPF_NEUTRAL_ALL', area: 'sender-auth', severity: 'warning', target: 'example.org', evidence: 'example.org. TXT "v=spf1 ?all"', title: 'The SPF record ends in "?all"', fix: 'End the record with "-all".' },
  { code: 'SMTP_AUTH_BEFORE_TLS', area: 'encryption', severity: 'critical', target: 'mx.example.org [192.0.2.1]:587 (submission)', evidence: '250-AUTH PLAIN\nC: AUTH PLAIN\n334 \nC: *\n501 5.7.0 aborted', title: 'AUTH is offered and accepted before TLS', fix: 'Offer AUTH only after STARTTLS.' },
  { code: 'MTA_STS_MISSING', area: 'encryption', severity: 'info', target: 'example.org', evidence: '_mta-sts.example.org. TXT: nxdomain', title: 'No MTA-STS record', fix: 'Publish one.' },
];

function report(fs: Finding[]): AuditReport {
  const sorted = sortFindings(fs);
  return {
    version: 1, domain: 'example.org', started: '2024-05-01T10:00:00.000Z', durationMs: 4200,
    settings: { hosts: [], services: [{ service: 'smtp', port: 25 }, { service: 'submission', port: 587 }], dkimSelectors: [], relayDomain: 'example.com', heloName: 'audit.example.net', blocklists: [] },
    targets: [{ host: 'mx.example.org', source: 'mx', priority: 10, addresses: ['192.0.2.1'] }],
    services: [{ host: 'mx.example.org', address: '192.0.2.1', service: 'smtp', port: 25, reachable: true, banner: '220 mx.example.org ESMTP <hi>' }],
    findings: sorted, summary: countBySeverity(sorted), worst: worstSeverity(sorted), exitStatus: exitStatusFor(sorted),
  };
}

test('severity, order and exit status', () => {
  assert.equal(worstSeverity([]), 'ok');
  assert.equal(exitStatusFor([]), 0);
  assert.equal(exitStatusFor([{ severity: 'ok' }, { severity: 'info' }]), 0);
  assert.equal(exitStatusFor([{ severity: 'info' }, { severity: 'warning' }]), 3);
  assert.equal(exitStatusFor([{ severity: 'warning' }, { severity: 'critical' }, { severity: 'ok' }]), 4);
  const order = sortFindings(findings).map((f) => f.code);
  assert.deepEqual(order, ['SMTP_AUTH_BEFORE_TLS', 'MTA_STS_MISSING', 'RELAY_OPEN', 'SPF_NEUTRAL_ALL', 'RDNS_OK']);
  assert.equal(cleanEvidence('a\x00b\r\nc\x1b[31m'), 'a?b\nc?[31m');
});

test('the terminal report groups by area, shows evidence and fix for problems, one line per pass', () => {
  const text = renderText(report(findings));
  const lines = text.split('\n');
  const at = (s: string) => lines.findIndex((l) => l.includes(s));
  assert.ok(at('== Encryption and logins ==') < at('== Open relay ==') && at('== Open relay ==') < at('== Sender authentication') && at('== Sender authentication') < at('== Naming'));
  assert.match(text, /result: 2 critical, 1 warning\(s\), 1 note\(s\), 1 passed — exit status 4/);
  assert.match(text, /CRITICAL {2}Open relay: accepts <mail> for another domain\n {12}at mx\.example\.org \[192\.0\.2\.1\]:25 \(smtp\)\n {12}seen: RCPT TO:<relaytest@example\.com> → 250/);
  assert.match(text, / {12}fix: {2}Relay only for "your" users\./);
  assert.match(text, /\n {2}ok {8}Forward-confirmed reverse DNS: mx\.example\.org {2}— mx\.example\.org \[192\.0\.2\.1\]\n/);
  assert.ok(!text.includes('PTR of 192.0.2.1'), 'evidence of passed checks only with --verbose');
  assert.ok(renderText(report(findings), { verbose: true }).includes('PTR of 192.0.2.1'));
  assert.ok(!text.includes('\x1b['), 'no colours unless asked');
});

test('the HTML report is one self-contained page and escapes what servers said', () => {
  const html = renderHtml(report(findings));
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/);
  // Nothing to load: no script, no external style, image, font or frame.
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=/i);
  assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more'));
  assert.ok(html.includes('Open relay: accepts &lt;mail&gt; for another domain'));
  assert.ok(html.includes('220 mx.example.org ESMTP &lt;hi&gt;'));
  for (const f of findings) assert.ok(html.includes(escapeHtml(f.title)), f.code);
  for (const id of ['encryption', 'relay', 'sender-auth', 'naming']) assert.ok(html.includes(`<section id="${id}">`), id);
  assert.ok(!html.includes('<section id="blocklists">'), 'empty areas are left out');
  assert.match(html, /<b>2<\/b>critical/);
});
