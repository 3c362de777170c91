// End to end: the URI check against a real rbldnsd on loopback, through the project's resolver
// — Spamhaus-DBL-style return codes, a SURBL-style bitmask list, an IP list fed by
// "resolve: a", the DBL "query refused" answer, local block/allow files — and `check-uri`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createResolver } from '../../src/dns/resolver.js';
import { conn } from '../../src/checks/test-support.js';
import type { MessageFacts } from '../../src/checks/types.js';
import { uriConfigSchema } from '../../src/checks/uri/config.js';
import { uriCheck } from '../../src/checks/uri/uri-check.js';
import { checkUriCommand } from '../../src/cli/check-uri.js';
import { needRbldnsd, startRbldnsd } from '../helpers/rbldnsd.js';
import { messageModel } from '../../src/mime/model.js';

const ZONES = {
  'dbl.zone': [
    ':127.0.1.2:Spam domain $',
    'spam-domain.com',
    '.phish-domain.net :127.0.1.4:Phish domain $',
    'refused-query.org :127.0.1.255:Invalid query',
  ].join('\n') + '\n',
  'multi.zone': [
    'multi-listed.info :127.0.0.24:',
    'blocked-resolver.biz :127.0.0.1:',
  ].join('\n') + '\n',
  'sbl.zone': ':127.0.0.2:SBL listed\n192.0.2.66\n203.0.113.99\n',
  'web.zone': '@ A 192.0.2.66\n',
};
const SPECS = ['dbl.test:dnset:dbl.zone', 'multi.test:dnset:multi.zone', 'sbl.test:ip4set:sbl.zone', 'badhost-web.com:generic:web.zone'];

function message(html: string): MessageFacts {
  const buf = Buffer.from(`From: x@sender.example.org\r\nSubject: offer\r\nContent-Type: text/html\r\n\r\n${html}\r\n`);
  return { ...messageModel({ size: buf.length, stream: () => Readable.from([buf]) }), headers: [], bareNewlines: 0 };
}

test('URI lists served by rbldnsd', async (t) => {
  if (!needRbldnsd(t)) return;
  const dns = await startRbldnsd(ZONES, SPECS, 'spam-domain.com.dbl.test');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uribl-e2e-'));
  t.after(async () => {
    await dns.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const resolver = createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 2, maxInflight: 100, cacheEntries: 1000, maxTtlMs: 60_000, negativeTtlMs: 60_000 });
  fs.writeFileSync(path.join(dir, 'block.txt'), '# local\n.local-bad.com\n');
  fs.writeFileSync(path.join(dir, 'allow.txt'), 'spam-domain.com # a false positive of the DNS list\n');
  const config = uriConfigSchema.parse({
    lists: [
      { zone: 'dbl.test', name: 'DBL', weight: 2.5, codes: { '127.0.1.2': 'SPAM', '127.0.1.4-6': { name: 'PHISH', weight: 6 } } },
      { zone: 'multi.test', name: 'MULTI', weight: 1.5, bitmask: { '8': 'PH', '16': 'MW', '64': 'ABUSE' } },
      { zone: 'sbl.test', name: 'SBL', type: 'ip', weight: 3, codes: ['127.0.0.2'], resolve: 'a' },
    ],
    block_files: [path.join(dir, 'block.txt')],
  });

  await t.test('codes, bitmask, IP hosts, resolved addresses, refusals, local block', async () => {
    const check = uriCheck({ resolver, config, ownDomains: ['own.example'] });
    t.after(() => check.close());
    const res = await check.run({ conn: conn(), envelope: { sender: 'x@sender.example.org', recipients: ['u@own.example'] }, message: message(`
      <a href="http://www.spam-domain.com/buy">buy</a>
      <a href="https://login.phish-domain.net/">www.mybank.com</a>
      <a href="http://multi-listed.info/">x</a>
      <a href="http://203.0.113.99/">ip</a>
      <a href="http://badhost-web.com/">resolved</a>
      <a href="http://refused-query.org/">y</a>
      <a href="http://shop.local-bad.com/">z</a>
      <a href="http://clean-domain.com/">ok</a>`) });
    const by = new Map(res.symbols!.map((s) => [s.name, s]));
    t.diagnostic(JSON.stringify(res.symbols));
    assert.equal(by.get('URIBL_DBL_SPAM')?.score, 2.5);
    assert.equal(by.get('URIBL_DBL_PHISH')?.score, 6);
    assert.match(by.get('URIBL_DBL_PHISH')!.reason, /phish-domain\.net in dbl\.test \(127\.0\.1\.4\)/);
    assert.ok(by.has('URIBL_MULTI_PH') && by.has('URIBL_MULTI_MW') && !by.has('URIBL_MULTI_ABUSE'));
    assert.match(by.get('URIBL_SBL')!.reason, /203\.0\.113\.99 in sbl\.test/);
    assert.match(by.get('URIBL_SBL')!.reason, /badhost-web\.com \(address 192\.0\.2\.66\)/);
    assert.match(by.get('URIBL_TEMPFAIL')!.reason, /refused-query\.org\): query refused \(answered 127\.0\.1\.255\)/);
    assert.match(by.get('URI_LOCAL_BLOCK')!.reason, /shop\.local-bad\.com \(\.local-bad\.com in .*block\.txt\)/);
    assert.ok(by.has('PHISH_LINK_MISMATCH'));
    assert.ok(by.has('URI_NUMERIC_IP'));
  });

  await t.test('a bitmask "resolver blocked" answer is unknown, not listed; an allow file wins', async () => {
    const allowCfg = { ...config, allow_files: [path.join(dir, 'allow.txt')] };
    const check = uriCheck({ resolver, config: allowCfg, ownDomains: [] });
    t.after(() => check.close());
    const res = await check.run({ conn: conn(), envelope: { sender: '', recipients: [] }, message: message('<a href="http://blocked-resolver.biz/">a</a><a href="http://www.spam-domain.com/">b</a>') });
    const names = res.symbols!.map((s) => s.name);
    assert.ok(!names.some((n) => n.startsWith('URIBL_MULTI')), names.join());
    assert.ok(!names.includes('URIBL_DBL_SPAM'), 'allow-listed domain must not be looked up');
    assert.match(res.symbols!.find((s) => s.name === 'URIBL_TEMPFAIL')!.reason, /blocked-resolver\.biz\): query refused \(answered 127\.0\.0\.1\)/);
  });

  await t.test('check-uri command: text and --json', async () => {
    let out = '';
    let err = '';
    const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, resolver };
    const cfg = { uri: config, dns: { servers: [dns.server], timeout: 500, attempts: 1, max_inflight: 10, cache_entries: 0, max_ttl: 1000, negative_ttl: 1000, error_ttl: 0, zones: [] } };
    assert.equal(await checkUriCommand(['http://www.spam-domain.com/x', 'clean-domain.com'], cfg, io), 1, err);
    assert.match(out, /registrable domain spam-domain\.com/);
    assert.match(out, /URIBL_DBL_SPAM/);
    assert.match(out, /clean-domain\.com: not listed/);
    out = '';
    assert.equal(await checkUriCommand(['--json', 'clean-domain.com'], cfg, io), 0);
    const json = JSON.parse(out) as { uris: { domain: string }[]; lookups: unknown[] }[];
    assert.equal(json[0]!.uris[0]!.domain, 'clean-domain.com');
    assert.equal(json[0]!.lookups.length, 2);
    assert.equal(await checkUriCommand([], cfg, io), 2);
    // Without an injected resolver the command builds one from config.dns.
    out = '';
    assert.equal(await checkUriCommand(['phish-domain.net'], cfg, { stdout: io.stdout, stderr: io.stderr }), 1);
    assert.match(out, /URIBL_DBL_PHISH/);
  });
});
