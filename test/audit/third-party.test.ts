// `portcullis audit` against mail servers nobody on this project wrote, configured badly and
// well, on loopback: Postfix and Dovecot from Debian, each a private instance on its own
// 127.0.0.x address; DNS for the test domains from an authoritative server on loopback.
//
//   open.test          Postfix on 127.0.0.2: an open relay (mynetworks = 0.0.0.0/0) that offers
//                      AUTH before TLS (smtpd_tls_auth_only = no, Dovecot SASL), a self-signed
//                      certificate, TLS 1.0 allowed, no abuse@; SPF "+all", no DMARC; generic
//                      reverse DNS that does not resolve back; listed on the test blocklist
//   good.test          Postfix on 127.0.0.3, ports 25 and 587: STARTTLS with a CA-signed
//                      certificate, AUTH only after TLS, relaying refused, roles present;
//                      SPF, DMARC p=reject, MTA-STS, TLS-RPT, forward-confirmed reverse DNS
//   mailbox-bad.test   Dovecot on 127.0.0.4: disable_plaintext_auth = no, TLS 1.0 allowed, an
//                      expired certificate
//   mailbox-good.test  Dovecot on 127.0.0.5: disable_plaintext_auth = yes, ssl = required
// Each misconfiguration must be found, and each good configuration must pass.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { createResolver } from '../../src/dns/resolver.js';
import { runAudit, type AuditOptions, type AuditReport } from '../../src/audit/audit.js';
import type { Finding } from '../../src/audit/findings.js';
import {
  makeCerts, missingTools, portsOn, removeDir, startDovecot, startPostfix, strict, tempDir, type Daemon,
} from './daemons.js';
import { chromiumLook, pngDistinctBytes, pngSize, runAuditCli, showRun, type CliRun } from './cli.js';

const missing = missingTools('postfix', 'dovecot', 'openssl');

const BAD_PF = '127.0.0.2';
const GOOD_PF = '127.0.0.3';
const BAD_DV = '127.0.0.4';
const GOOD_DV = '127.0.0.5';

function codes(r: AuditReport, severity?: Finding['severity']): string[] {
  return r.findings.filter((f) => !severity || f.severity === severity).map((f) => f.code);
}

function find(r: AuditReport, code: string, target?: string): Finding[] {
  return r.findings.filter((f) => f.code === code && (!target || f.target.includes(target)));
}

function show(r: AuditReport): string {
  return r.findings.map((f) => `${f.severity.padEnd(8)} ${f.code.padEnd(28)} ${f.target} — ${f.title}`).join('\n');
}

describe('audit against Postfix and Dovecot on loopback', { skip: !strict && missing ? missing : false }, () => {
  let tmp: string;
  let dns: DnsServer;
  const daemons: Daemon[] = [];
  let ca: string;
  let configFile: string;
  const ports = { badSmtp: 0, goodSmtp: 0, goodSubmission: 0, badMailbox: { imap: 0, imaps: 0, pop3: 0, pop3s: 0 }, goodMailbox: { imap: 0, imaps: 0, pop3: 0, pop3s: 0 } };
  let resolverOptions: Parameters<typeof createResolver>[0];

  before(async () => {
    if (missing) throw new Error(`required tool missing: ${missing}`);
    tmp = await tempDir('portcullis-audit-3p-');
    const certs = makeCerts(path.join(tmp, 'certs'));
    ca = certs.ca;
    const badMx = certs.selfSigned('mx.open.test');
    const goodMx = certs.issue('mx-good', ['mx.good.test']);
    const expired = certs.issueExpired('imap-bad', ['imap.bad.test']);
    const goodImap = certs.issue('imap-good', ['imap.good.test']);

    dns = await startDnsServer({
      'open.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.open.test' } }, { type: 'TXT', data: 'v=spf1 +all' }],
      'mx.open.test': [{ type: 'A', data: BAD_PF }],
      '2.0.0.127.in-addr.arpa': [{ type: 'PTR', data: '127-0-0-2.dyn.example.net' }],
      '2.0.0.127.bl.test': [{ type: 'A', data: '127.0.0.2' }, { type: 'TXT', data: 'Listed by the audit test: open relay' }],
      'good.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.good.test' } }, { type: 'TXT', data: 'v=spf1 mx -all' }],
      'mx.good.test': [{ type: 'A', data: GOOD_PF }],
      '3.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'mx.good.test' }],
      '_dmarc.good.test': [{ type: 'TXT', data: 'v=DMARC1; p=reject; rua=mailto:dmarc@good.test' }],
      '_mta-sts.good.test': [{ type: 'TXT', data: 'v=STSv1; id=20240101T000000' }],
      '_smtp._tls.good.test': [{ type: 'TXT', data: 'v=TLSRPTv1; rua=mailto:tls-reports@good.test' }],
      'mailbox-bad.test': [{ type: 'MX', data: { priority: 10, exchange: 'imap.bad.test' } }],
      'imap.bad.test': [{ type: 'A', data: BAD_DV }],
      'mailbox-good.test': [{ type: 'MX', data: { priority: 10, exchange: 'imap.good.test' } }, { type: 'TXT', data: 'v=spf1 mx -all' }],
      '_dmarc.mailbox-good.test': [{ type: 'TXT', data: 'v=DMARC1; p=quarantine; rua=mailto:dmarc@mailbox-good.test' }],
      'imap.good.test': [{ type: 'A', data: GOOD_DV }],
      '5.0.0.127.in-addr.arpa': [{ type: 'PTR', data: 'imap.good.test' }],
    });
    resolverOptions = { servers: [dns.server], timeoutMs: 1000, attempts: 2, maxInflight: 200, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 };
    configFile = path.join(tmp, 'portcullis.yaml');
    fs.writeFileSync(configFile, YAML.stringify({ dns: { servers: [dns.server] }, dnsbl: { lists: [{ zone: 'bl.test' }] } }));

    [ports.badSmtp] = await portsOn(BAD_PF, 1);
    [ports.goodSmtp, ports.goodSubmission] = await portsOn(GOOD_PF, 2);
    const [a, b, c, d] = await portsOn(BAD_DV, 4);
    ports.badMailbox = { imap: a!, imaps: b!, pop3: c!, pop3s: d! };
    const [e, f, g, h] = await portsOn(GOOD_DV, 4);
    ports.goodMailbox = { imap: e!, imaps: f!, pop3: g!, pop3s: h! };

    // Dovecot first: the Postfix instances use their auth sockets for SASL.
    const dvBad = await startDovecot(path.join(tmp, 'dovecot-bad'), {
      address: BAD_DV, ports: ports.badMailbox, cert: expired,
      settings: ['ssl = yes', 'disable_plaintext_auth = no', 'ssl_min_protocol = TLSv1', 'ssl_cipher_list = ALL:@SECLEVEL=0'],
    });
    daemons.push(dvBad);
    const dvGood = await startDovecot(path.join(tmp, 'dovecot-good'), {
      address: GOOD_DV, ports: ports.goodMailbox, cert: goodImap,
      settings: ['ssl = required', 'disable_plaintext_auth = yes', 'ssl_min_protocol = TLSv1.2'],
    });
    daemons.push(dvGood);

    daemons.push(await startPostfix(path.join(tmp, 'postfix-bad'), {
      address: BAD_PF, hostname: 'mx.open.test', ports: [ports.badSmtp],
      main: [
        'mydestination = open.test, mx.open.test',
        'mynetworks = 0.0.0.0/0',
        'local_recipient_maps = inline:{ postmaster=x }',
        'smtpd_tls_security_level = may',
        `smtpd_tls_cert_file = ${badMx.cert}`,
        `smtpd_tls_key_file = ${badMx.key}`,
        'tls_medium_cipherlist = ALL:@SECLEVEL=0',
        'smtpd_sasl_auth_enable = yes',
        'smtpd_sasl_type = dovecot',
        `smtpd_sasl_path = ${dvBad.authSocket}`,
        'smtpd_tls_auth_only = no',
      ],
      services: [`{address}:${ports.badSmtp} inet n - n - - smtpd`],
    }));
    daemons.push(await startPostfix(path.join(tmp, 'postfix-good'), {
      address: GOOD_PF, hostname: 'mx.good.test', ports: [ports.goodSmtp, ports.goodSubmission],
      main: [
        'mydestination = good.test, mx.good.test',
        'mynetworks = 192.0.2.1/32',
        'local_recipient_maps = inline:{ postmaster=x, abuse=x }',
        'smtpd_tls_security_level = may',
        `smtpd_tls_cert_file = ${goodMx.cert}`,
        `smtpd_tls_key_file = ${goodMx.key}`,
        'smtpd_tls_protocols = >=TLSv1.2',
        'smtpd_tls_mandatory_protocols = >=TLSv1.2',
        'smtpd_tls_exclude_ciphers = aNULL, eNULL',
        'smtpd_sasl_type = dovecot',
        `smtpd_sasl_path = ${dvGood.authSocket}`,
        'smtpd_tls_auth_only = yes',
      ],
      services: [
        `{address}:${ports.goodSmtp} inet n - n - - smtpd`,
        `{address}:${ports.goodSubmission} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes -o smtpd_relay_restrictions=permit_sasl_authenticated,reject`,
      ],
    }));
  });

  after(async () => {
    for (const d of daemons.reverse()) await d.stop().catch(() => undefined);
    await dns?.close();
    if (tmp) await removeDir(tmp);
  });

  async function audit(domain: string, extra: Partial<AuditOptions>): Promise<AuditReport> {
    const r = await runAudit({
      domain, resolver: createResolver(resolverOptions), ca: [fs.readFileSync(ca, 'utf8')], dnsbl: { lists: [{ zone: 'bl.test', weight: 1, codes: [] }], threshold: 1 },
      rate: 100, concurrency: 4, connectTimeoutMs: 5000, replyTimeoutMs: 10_000, probeTimeoutMs: 90_000, heloName: 'audit.example.net', ...extra,
    });
    if (process.env.AUDIT_TEST_VERBOSE === '1') process.stderr.write(`# audit of ${domain}\n${show(r)}\n`);
    return r;
  }

  let openRun: CliRun | undefined;
  let openReport: AuditReport | undefined;
  const openHtml = () => path.join(tmp, 'open.html');

  test('the open-relay Postfix that offers AUTH before TLS: every misconfiguration is found (CLI, --json, --html)', async () => {
    const args = ['open.test', '--config', configFile, '--port', `smtp=${ports.badSmtp}`, '--ca', ca, '--json', '--html', openHtml(),
      '--rate', '100', '--timeout', '10s', '--helo', 'audit.example.net', '--quiet'];
    openRun = await runAuditCli(args);
    const run = openRun;
    assert.equal(run.code, 4, showRun(args, run));
    const r = JSON.parse(run.stdout) as AuditReport;
    openReport = r;
    const msg = `${show(r)}\n${showRun(args, run).slice(0, 4000)}`;
    assert.equal(r.exitStatus, 4);
    assert.equal(r.worst, 'critical');

    const relay = find(r, 'RELAY_OPEN');
    assert.equal(relay.length, 1, msg);
    assert.match(relay[0]!.evidence, /RCPT TO:<relaytest@example\.com> → 250/, 'the evidence is the exact reply');
    const auth = find(r, 'SMTP_AUTH_BEFORE_TLS');
    assert.equal(auth.length, 1, msg);
    assert.equal(auth[0]!.severity, 'critical');
    assert.match(auth[0]!.evidence, /250[ -]AUTH PLAIN LOGIN/);
    assert.match(auth[0]!.evidence, /^334/m, 'the server asked for credentials');
    assert.match(auth[0]!.evidence, /C: \*/, 'and the audit cancelled instead of sending any');
    assert.ok(find(r, 'SMTP_STARTTLS').length, msg);
    assert.ok(find(r, 'TLS_CERT_UNTRUSTED').length, `self-signed certificate not flagged\n${msg}`);
    assert.ok(find(r, 'TLS_LEGACY_VERSIONS').length, `TLS 1.0 not flagged\n${msg}`);
    assert.equal(find(r, 'SPF_PASS_ALL').length, 1, msg);
    assert.equal(find(r, 'DMARC_MISSING').length, 1, msg);
    const listed = find(r, 'DNSBL_LISTED');
    assert.equal(listed.length, 1, msg);
    assert.match(listed[0]!.evidence, /Listed by the audit test/);
    assert.ok(find(r, 'RDNS_NOT_FCRDNS').length, msg);
    assert.ok(find(r, 'RDNS_DYNAMIC').length, msg);
    assert.ok(r.findings.some((f) => f.code === 'ROLE_ACCEPTED' && f.title.startsWith('postmaster@open.test')), msg);
    const abuse = r.findings.find((f) => f.code === 'ROLE_REFUSED' && f.title.startsWith('abuse@open.test'));
    assert.ok(abuse, msg);
    assert.match(abuse.evidence, /RCPT TO:<abuse@open\.test> → 550/);
    // Every finding says what to do, except passed checks.
    for (const f of r.findings) if (f.severity === 'warning' || f.severity === 'critical') assert.ok(f.fix, `${f.code} has no fix`);
    assert.ok(fs.statSync(openHtml()).size > 2000);
  });

  test('the HTML report in headless Chromium: a real screenshot, and every problem shown', async (t) => {
    const problem = missingTools('chromium');
    if (problem) {
      if (strict) throw new Error(`required tool missing: ${problem}`);
      t.skip(problem);
      return;
    }
    assert.ok(openReport, 'the CLI test above must have produced the report');
    const { png, dom } = chromiumLook(openHtml(), tmp);
    assert.deepEqual(pngSize(png), { width: 1200, height: 2000 });
    assert.ok(png.length > 20_000, `screenshot only ${png.length} bytes`);
    assert.ok(pngDistinctBytes(png) > 100, 'the screenshot looks blank');
    const text = dom.replace(/<[^>]+>/g, ' ').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
    const problems = openReport.findings.filter((f) => f.severity === 'critical' || f.severity === 'warning');
    assert.ok(problems.length >= 8);
    for (const f of problems) assert.ok(text.includes(f.title), `"${f.title}" is not in the rendered page`);
    assert.match(dom, /Mail security audit of open\.test/);
  });

  test('the well-configured Postfix (ports 25 and 587) passes', async () => {
    const r = await audit('good.test', { ports: { smtp: ports.goodSmtp, submission: ports.goodSubmission } });
    const msg = show(r);
    assert.deepEqual(codes(r, 'critical'), [], msg);
    // The only warning: the MX address is on loopback (the test's, not Postfix's).
    assert.deepEqual([...new Set(codes(r, 'warning'))], ['HOST_PRIVATE_ADDRESS'], msg);
    for (const port of [ports.goodSmtp, ports.goodSubmission]) {
      const at = `:${port} `;
      assert.equal(find(r, 'SMTP_NO_AUTH_BEFORE_TLS', at).length, 1, `${at}\n${msg}`);
      assert.equal(find(r, 'SMTP_STARTTLS', at).length, 1, msg);
      assert.equal(find(r, 'RELAY_REFUSED', at).length, 1, msg);
      assert.equal(find(r, 'TLS_OK', at).length, 1, msg);
      assert.equal(find(r, 'TLS_CERT_OK', at).length, 1, msg);
    }
    assert.equal(find(r, 'ROLE_ACCEPTED').length, 2, msg);
    for (const code of ['SPF_POLICY', 'SPF_LOOKUPS_OK', 'SPF_COVERS_MX', 'DMARC_POLICY', 'MTA_STS', 'TLS_RPT', 'RDNS_OK', 'DNSBL_CLEAN', 'MX_OK']) {
      assert.equal(find(r, code).length, 1, `${code} missing\n${msg}`);
    }
    // Postfix defers relay attempts by default (defer_unauth_destination: 454 4.7.1).
    assert.match(find(r, 'RELAY_REFUSED', `:${ports.goodSmtp} `)[0]!.evidence, /RCPT TO:<relaytest@example\.com> → 454 4\.7\.1/);
    assert.equal(r.exitStatus, 3, 'a warning (the loopback address) gives exit status 3');
  });

  test('Dovecot with disable_plaintext_auth = no and an expired certificate: found', async () => {
    const r = await audit('mailbox-bad.test', { ports: ports.badMailbox });
    const msg = show(r);
    const imap = find(r, 'IMAP_PLAINTEXT_LOGIN');
    assert.equal(imap.length, 1, msg);
    assert.match(imap[0]!.evidence, /NO \[AUTHENTICATIONFAILED\]/);
    assert.doesNotMatch(imap[0]!.evidence, /LOGINDISABLED/);
    const pop = find(r, 'POP3_PLAINTEXT_LOGIN');
    assert.equal(pop.length, 1, msg);
    assert.match(pop[0]!.evidence, /-ERR \[AUTH\] Authentication failed/);
    for (const port of Object.values(ports.badMailbox)) {
      const expired = find(r, 'TLS_CERT_EXPIRED', `:${port} `);
      assert.equal(expired.length, 1, `port ${port}\n${msg}`);
      assert.equal(expired[0]!.severity, 'critical');
      assert.equal(find(r, 'TLS_CERT_UNTRUSTED', `:${port} `).length, 0, 'signed by the trusted test CA: only the date is wrong');
      assert.equal(find(r, 'TLS_LEGACY_VERSIONS', `:${port} `).length, 1, msg);
    }
    assert.equal(r.exitStatus, 4);
  });

  test('Dovecot with disable_plaintext_auth = yes and ssl = required: passes', async () => {
    const r = await audit('mailbox-good.test', { ports: ports.goodMailbox });
    const msg = show(r);
    assert.deepEqual(codes(r, 'critical'), [], msg);
    assert.deepEqual([...new Set(codes(r, 'warning'))], ['HOST_PRIVATE_ADDRESS'], msg);
    const loginDisabled = find(r, 'IMAP_LOGINDISABLED');
    assert.equal(loginDisabled.length, 1, msg);
    assert.match(loginDisabled[0]!.evidence, /LOGINDISABLED/);
    const pop = find(r, 'POP3_NO_PLAINTEXT_LOGIN');
    assert.equal(pop.length, 1, msg);
    assert.match(pop[0]!.evidence, /-ERR .*(Plaintext|TLS|SSL)/i);
    for (const port of Object.values(ports.goodMailbox)) {
      assert.equal(find(r, 'TLS_OK', `:${port} `).length, 1, `port ${port}\n${msg}`);
      assert.equal(find(r, 'TLS_CERT_OK', `:${port} `).length, 1, `port ${port}\n${msg}`);
    }
  });
});
