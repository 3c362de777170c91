// The `portcullis audit` command front end: arguments, usage errors, exit statuses, outputs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import YAML from 'yaml';
import { startDnsServer, type DnsServer } from '../../test/helpers/dns-server.js';
import { auditCli, parseAuditArgs } from './audit.js';

function memoryIo() {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  return { io: { stdout, stderr }, out: () => out, err: () => err };
}

test('arguments: hosts, ports, selectors, durations', () => {
  const { args, config } = parseAuditArgs(['example.org', '--host', 'a.example.org', '--host', '192.0.2.7', '--port', 'smtp=2525,imap=1143', '--port', 'pop3s=9950',
    '--dkim-selector', 's1,s2', '--dkim-selector', 's3', '--json', '--html', 'r.html', '--timeout', '5s', '--budget', '2m', '--rate', '20', '--concurrency', '2', '-c', 'x.yaml']);
  assert.equal(config, 'x.yaml');
  assert.equal(args.domain, 'example.org');
  assert.deepEqual(args.hosts, ['a.example.org', '192.0.2.7']);
  assert.deepEqual(args.ports, { smtp: 2525, imap: 1143, pop3s: 9950 });
  assert.deepEqual(args.dkimSelectors, ['s1', 's2', 's3']);
  assert.equal(args.json, true);
  assert.equal(args.html, 'r.html');
  assert.equal(args.timeoutMs, 5000);
  assert.equal(args.budgetMs, 120_000);
  assert.equal(args.rate, 20);
  assert.equal(args.concurrency, 2);
  assert.equal(parseAuditArgs(['example.org']).args.ports, undefined);
});

test('usage errors exit 2 with the reason and the usage; --help exits 0', async () => {
  for (const [argv, why] of [
    [[], /give exactly one DOMAIN/],
    [['a.org', 'b.org'], /give exactly one DOMAIN/],
    [['example.org', '--port', 'smtp=99999'], /out of range/],
    [['example.org', '--port', 'ftp=21'], /unknown service "ftp"/],
    [['example.org', '--timeout', 'soon'], /--timeout: "soon" is not a duration/],
    [['example.org', '--bogus'], /bogus/],
    [['not a domain'], /is not a domain name/],
  ] as const) {
    const m = memoryIo();
    assert.equal(await auditCli(argv, m.io), 2, argv.join(' '));
    assert.match(m.err(), why);
  }
  const m = memoryIo();
  assert.equal(await auditCli(['--help'], m.io), 0);
  assert.match(m.err(), /usage: portcullis audit DOMAIN/);
});

describe('runs with the configuration\'s resolver', () => {
  let dns: DnsServer;
  let dir: string;
  before(async () => {
    dns = await startDnsServer({ 'exists.test': [{ type: 'A', data: '192.0.2.1' }] });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-audit-cli-'));
    fs.writeFileSync(path.join(dir, 'c.yaml'), YAML.stringify({ dns: { servers: [dns.server], timeout: '500ms', attempts: 1 } }));
  });
  after(async () => {
    await dns.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a missing domain: the text report and exit status 4; --json and --html', async () => {
    const m = memoryIo();
    const code = await auditCli(['nowhere.test', '--config', path.join(dir, 'c.yaml'), '--port', 'smtp=1', '--quiet'], m.io);
    assert.equal(code, 4);
    assert.match(m.out(), /Portcullis audit of nowhere\.test/);
    assert.match(m.out(), /CRITICAL {2}The domain does not exist in the DNS/);
    assert.equal(m.err(), '');

    const j = memoryIo();
    const html = path.join(dir, 'r.html');
    assert.equal(await auditCli(['nowhere.test', '--config', path.join(dir, 'c.yaml'), '--json', '--html', html], j.io), 4);
    const report = JSON.parse(j.out());
    assert.equal(report.version, 1);
    assert.equal(report.exitStatus, 4);
    assert.equal(report.findings[0].code, 'DOMAIN_MISSING');
    assert.match(fs.readFileSync(html, 'utf8'), /The domain does not exist in the DNS/);
    assert.match(j.err(), /HTML report written/);
  });

  test('a configuration that does not load: exit 1 with the reason', async () => {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'dns: { servrs: [] }\n');
    const m = memoryIo();
    assert.equal(await auditCli(['exists.test', '--config', path.join(dir, 'bad.yaml')], m.io), 1);
    assert.match(m.err(), /dns\.servrs: unknown key/);
  });
});
