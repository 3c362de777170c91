// The gateway's self-watch: our addresses against the configured DNS blocklists and their
// reverse DNS, on a DNS server on loopback. A listing is logged, counted in metrics and reported
// once; a delisting is logged; a broken resolver does not throw into the gateway.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import client from 'prom-client';
import { pino } from 'pino';
import { startDnsServer, type DnsServer, type ZoneData } from '../../test/helpers/dns-server.js';
import { createResolver } from '../dns/resolver.js';
import { selfCheckConfigSchema } from './config.js';
import { reportMessage, SelfWatch } from './self-watch.js';

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const ZONE: ZoneData = {
  'mx.example.test': [{ type: 'A', data: '192.0.2.25' }],
  '25.2.0.192.in-addr.arpa': [{ type: 'PTR', data: 'mx.example.test' }],
  '26.2.0.192.in-addr.arpa': [{ type: 'PTR', data: 'out.example.test' }],
  'out.example.test': [{ type: 'A', data: '192.0.2.26' }],
};

describe('self-watch', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await startDnsServer(ZONE);
  });
  after(() => dns.close());

  const resolver = () => createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, maxInflight: 100, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });

  test('the configuration section: defaults, and errors that name the problem', () => {
    const c = selfCheckConfigSchema.parse({});
    assert.deepEqual(c, { enabled: false, interval: 3_600_000, first_delay: 60_000, addresses: [], hostnames: [] });
    assert.equal(selfCheckConfigSchema.parse({ enabled: true, interval: '30m', addresses: ['192.0.2.26', '2001:db8::25'] }).interval, 1_800_000);
    assert.throws(() => selfCheckConfigSchema.parse({ addresses: ['mx.example.test'] }), /IPv4 or IPv6 address/);
    assert.throws(() => selfCheckConfigSchema.parse({ interval: '10s' }), /at least 1m/);
    assert.throws(() => selfCheckConfigSchema.parse({ intervall: '1h' }), /intervall/);
  });

  test('a listing appears: logged, counted, reported once; it goes away: logged', async () => {
    const { logger, lines } = memoryLogger();
    const registry = new client.Registry();
    const reports: { subject: string; body: string }[] = [];
    const watch = new SelfWatch({
      config: selfCheckConfigSchema.parse({ enabled: true, addresses: ['192.0.2.26'], hostnames: ['mx.example.test'] }),
      hostname: 'mx.example.test',
      dnsbl: { lists: [{ zone: 'bl.test', weight: 1, codes: [] }, { zone: 'wl.test', weight: -1, codes: [] }], threshold: 1 },
      resolver: resolver(), logger, registry,
      report: async (subject, body) => {
        reports.push({ subject, body });
      },
    });

    const clean = await watch.runOnce();
    assert.deepEqual([...clean.addresses].sort(), ['192.0.2.25', '192.0.2.26']);
    assert.deepEqual(clean.problems, []);
    assert.equal(reports.length, 0);
    assert.ok(lines.some((l) => l.event === 'self_check'));

    dns.set({ ...ZONE, '26.2.0.192.bl.test': [{ type: 'A', data: '127.0.0.2' }, { type: 'TXT', data: 'Listed: spam trap hits' }] });
    const listed = await watch.runOnce();
    assert.deepEqual(listed.appeared.map((f) => f.code), ['DNSBL_LISTED']);
    assert.equal(reports.length, 1);
    assert.match(reports[0]!.subject, /192\.0\.2\.26 is listed on bl\.test/);
    assert.match(reports[0]!.body, /spam trap hits/);
    assert.match(reports[0]!.body, /fix: /);
    const problem = lines.find((l) => l.event === 'self_check_problem');
    assert.equal(problem?.code, 'DNSBL_LISTED');
    const metrics = await registry.getSingleMetricAsString('portcullis_self_check_listed');
    assert.match(metrics, /portcullis_self_check_listed\{address="192\.0\.2\.26",list="bl\.test"\} 1/);
    assert.match(metrics, /portcullis_self_check_listed\{address="192\.0\.2\.25",list="bl\.test"\} 0/);
    assert.doesNotMatch(metrics, /wl\.test/, 'allowlists are not watched');
    assert.match(await registry.getSingleMetricAsString('portcullis_self_check_problems'), / 1$/m);

    // Still listed an hour later: no second report.
    const again = await watch.runOnce();
    assert.equal(again.problems.length, 1);
    assert.equal(again.appeared.length, 0);
    assert.equal(reports.length, 1);

    dns.set(ZONE);
    const delisted = await watch.runOnce();
    assert.deepEqual(delisted.cleared.map((f) => f.code), ['DNSBL_LISTED']);
    assert.ok(lines.some((l) => l.event === 'self_check_cleared'));
    assert.match(await registry.getSingleMetricAsString('portcullis_self_check_listed'), /address="192\.0\.2\.26",list="bl\.test"\} 0/);
    assert.match(await registry.getSingleMetricAsString('portcullis_self_check_runs_total'), /outcome="problems"\} 2/);
  });

  test('reverse DNS problems of our own addresses are reported too; a failing report is logged, not thrown', async () => {
    const { logger, lines } = memoryLogger();
    const watch = new SelfWatch({
      config: selfCheckConfigSchema.parse({ enabled: true, addresses: ['192.0.2.27'] }),
      hostname: 'nowhere.example.test',
      dnsbl: { lists: [], threshold: 1 },
      resolver: resolver(), logger,
      report: async () => {
        throw new Error('postmaster mailbox is full');
      },
    });
    const r = await watch.runOnce();
    assert.deepEqual(r.problems.map((f) => f.code), ['RDNS_NONE']);
    assert.ok(r.findings.some((f) => f.code === 'SELF_HOST_NO_ADDRESS'), 'the host name without address is noted');
    assert.ok(lines.some((l) => l.event === 'self_check_report_failed'));
  });

  test('start() schedules only when enabled; stop() waits and stops', async () => {
    const { logger } = memoryLogger();
    const base = { hostname: 'mx.example.test', dnsbl: { lists: [], threshold: 1 }, resolver: resolver(), logger };
    const off = new SelfWatch({ ...base, config: selfCheckConfigSchema.parse({}) });
    off.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(off.last, undefined);
    await off.stop();

    const on = new SelfWatch({ ...base, config: { ...selfCheckConfigSchema.parse({ enabled: true }), first_delay: 10 } });
    on.start();
    const deadline = Date.now() + 5000;
    while (!on.last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(on.last, 'the first check ran after first_delay');
    assert.deepEqual(on.last.addresses, ['192.0.2.25']);
    await on.stop();
  });
});

test('the report as a message for the postmaster\'s mailbox', () => {
  const msg = reportMessage({
    hostname: 'mx.example.test', to: 'postmaster@example.test', subject: 'Portcullis self-check: 192.0.2.26 is listed on bl.test',
    body: `line one\n${'x'.repeat(2000)}\nné`, date: new Date('2024-05-01T10:00:00Z'),
  }).toString('utf8');
  const [head, body] = msg.split('\r\n\r\n');
  assert.match(head!, /^From: "Portcullis self-check" <MAILER-DAEMON@mx\.example\.test>\r\nTo: <postmaster@example\.test>\r\nSubject: Portcullis self-check: 192\.0\.2\.26 is listed on bl\.test\r\nDate: Wed, 01 May 2024 10:00:00 \+0000\r\n/);
  assert.match(head!, /\r\nAuto-Submitted: auto-generated\r\n/);
  assert.match(head!, /\r\nMessage-ID: <self-check\.[0-9a-z]+\.[0-9a-f]{12}@mx\.example\.test>\r\n/);
  assert.ok(msg.split('\r\n').every((l) => Buffer.byteLength(l) <= 998));
  assert.ok(body!.startsWith('line one\r\n'));
  assert.ok(body!.endsWith('né\r\n'));
  assert.ok(!/[^\r]\n/.test(msg), 'bare LF');
});
