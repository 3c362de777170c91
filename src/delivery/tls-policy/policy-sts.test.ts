// MTA-STS and the per-domain overrides through the real policy, against the loopback DNS server
// (the _mta-sts TXT records, the mta-sts.<domain> addresses) and a real HTTPS server on
// 127.0.0.143:443 whose certificates come from a test CA made with openssl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import { createResolver } from '../../dns/resolver.js';
import { silentLogger } from '../../log.js';
import { outboundTlsConfigSchema } from './config.js';
import { createTlsPolicy, type AttemptSink } from './policy.js';
import { startDnsServer, type DnsServer, type ZoneData } from '../../../test/helpers/dns-server.js';
import { createTestPki, type TestPki } from '../../../test/helpers/test-pki.js';

const WEB = '127.0.0.143';
const GOOD = 'version: STSv1\nmode: enforce\nmx: mx.good.test\nmx: *.mail.good.test\nmax_age: 86400\n';

let pki: TestPki;
let dns: DnsServer;
let server: https.Server;
const hits = new Map<string, number>();
/** What each policy host answers; changed by tests. */
const answers = new Map<string, (res: ServerResponse) => void>();

const text = (body: string, type = 'text/plain; charset=utf-8') => (res: ServerResponse) => {
  res.writeHead(200, { 'content-type': type });
  res.end(body);
};

function zone(ids: Record<string, string>): ZoneData {
  const z: Record<string, ZoneData[string]> = {};
  for (const [domain, id] of Object.entries(ids)) {
    z[`_mta-sts.${domain}`] = [{ type: 'TXT', data: `v=STSv1; id=${id};` }];
    z[`mta-sts.${domain}`] = [{ type: 'A', data: WEB }];
  }
  return z;
}
const IDS: Record<string, string> = {
  'good.test': '1', 'testing.test': '1', 'malformed.test': '1', 'big.test': '1', 'slow.test': '1', 'redirect.test': '1',
  'html.test': '1', 'wrongname.test': '1', 'missing.test': '1', 'cache.test': '1', 'none.test': '1',
};

before(async () => {
  pki = createTestPki();
  const good = pki.issue('mta-sts.*', { altNames: Object.keys(IDS).filter((d) => d !== 'wrongname.test').map((d) => `mta-sts.${d}`) });
  const wrong = pki.issue('www.elsewhere.test');
  answers.set('mta-sts.good.test', text(GOOD));
  answers.set('mta-sts.testing.test', text('version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 86400\n'));
  answers.set('mta-sts.none.test', text('version: STSv1\nmode: none\nmax_age: 86400\n'));
  answers.set('mta-sts.malformed.test', text('<html>policy? what policy</html>'));
  answers.set('mta-sts.big.test', text(GOOD + `x-padding: ${'a'.repeat(70 * 1024)}\n`));
  answers.set('mta-sts.slow.test', (res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('version: STSv1\n'); // and never the rest
  });
  answers.set('mta-sts.redirect.test', (res) => {
    res.writeHead(301, { location: 'https://mta-sts.good.test/.well-known/mta-sts.txt' });
    res.end();
  });
  answers.set('mta-sts.html.test', text(GOOD, 'text/html'));
  answers.set('mta-sts.wrongname.test', text(GOOD));
  answers.set('mta-sts.cache.test', text('version: STSv1\nmode: enforce\nmx: mx.cache.test\nmax_age: 3600\n'));
  server = https.createServer({
    key: good.key, cert: good.chain,
    SNICallback: (name, cb) => cb(null, tls.createSecureContext(name === 'mta-sts.wrongname.test' ? { key: wrong.key, cert: wrong.chain } : { key: good.key, cert: good.chain })),
  }, (req: IncomingMessage, res: ServerResponse) => {
    const host = (req.headers.host ?? '').toLowerCase();
    hits.set(host, (hits.get(host) ?? 0) + 1);
    const answer = req.url === '/.well-known/mta-sts.txt' ? answers.get(host) : undefined;
    if (!answer) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here');
      return;
    }
    answer(res);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(443, WEB, resolve));
  dns = await startDnsServer(zone(IDS));
});

after(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await dns?.close();
  pki?.remove();
});

function setup(opts: { domains?: unknown[]; dataDir?: string; now?: () => number } = {}) {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sts-'));
  const config = outboundTlsConfigSchema.parse({ domains: opts.domains ?? [], mta_sts: { fetch_timeout: '1500ms', retry_after: '1m' } });
  const failures: { domain: string; result: string; reason: string }[] = [];
  const sink: AttemptSink = { record() {}, policyFailure: (domain, result, reason) => failures.push({ domain, result, reason }) };
  const resolver = createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, maxInflight: 50, cacheEntries: 0, maxTtlMs: 60_000, negativeTtlMs: 1000 });
  const policy = createTlsPolicy({ config, resolver, dataDir, logger: silentLogger(), dnssecValidating: false, ca: [pki.root], sink, now: opts.now });
  return { policy, failures, dataDir };
}

test('enforce: a listed MX (exact or one-label wildcard) must pass WebPKI; an unlisted MX is skipped', async () => {
  const { policy, dataDir } = setup();
  const mx = await policy.forHost('good.test', 'mx.good.test.');
  assert.equal(mx.mode, 'required');
  assert.equal(mx.policyType, 'sts');
  assert.equal(mx.testing, false);
  assert.equal(mx.servername, 'mx.good.test');
  assert.deepEqual(mx.ca, [pki.root]);
  assert.equal(mx.skip, undefined);
  const wild = await policy.forHost('GOOD.test', 'b.mail.good.test');
  assert.equal(wild.mode, 'required');
  assert.equal(wild.skip, undefined);
  const other = await policy.forHost('good.test', 'backup.elsewhere.test');
  assert.equal(other.skip?.result, 'validation-failure');
  assert.match(other.skip!.reason, /backup\.elsewhere\.test is not among the MX hosts/);
  const deep = await policy.forHost('good.test', 'a.b.mail.good.test');
  assert.ok(deep.skip, 'the wildcard covers one label only');
  // One fetch served all four questions (the TXT id did not change), and it is on disk.
  assert.equal(hits.get('mta-sts.good.test'), 1);
  const cached = JSON.parse(fs.readFileSync(path.join(dataDir, 'mta-sts', 'good.test.json'), 'utf8'));
  assert.equal(cached.id, '1');
  assert.equal(cached.policy.mode, 'enforce');
});

test('the WebPKI check of an enforce policy: wrong name, expired and untrusted fail, a good certificate passes', async () => {
  const { policy } = setup();
  const p = await policy.forHost('good.test', 'mx.good.test');
  const good = pki.issue('mx.good.test');
  const wrong = pki.issue('mx.other.test');
  const peerOf = async (chain: string, key: string) => {
    const srv = tls.createServer({ cert: chain, key });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      return await new Promise<{ peer: tls.PeerCertificate; authorized: boolean; err?: string }>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: p.servername, ca: p.ca ? [...p.ca] : undefined, rejectUnauthorized: false }, () => {
          resolve({ peer: s.getPeerCertificate(true), authorized: s.authorized, err: s.authorizationError?.toString() });
          s.end();
        });
        s.on('error', reject);
      });
    } finally {
      srv.close();
    }
  };
  const ok = await peerOf(good.chain, good.key);
  assert.deepEqual(p.check(ok.peer, ok.authorized, ok.err), { ok: true });
  const bad = await peerOf(wrong.chain, wrong.key);
  const r = p.check(bad.peer, bad.authorized, bad.err);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.result, 'certificate-host-mismatch');
  const old = pki.issue('mx.good.test', { expired: true });
  const late = await peerOf(old.chain, old.key);
  assert.equal(late.authorized, false);
  const e = p.check(late.peer, late.authorized, late.err);
  assert.equal(!e.ok && e.result, 'certificate-expired');
  // Without our test CA in the store the same good certificate is not trusted.
  const untrusted = p.check(ok.peer, false, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  assert.equal(!untrusted.ok && untrusted.result, 'certificate-not-trusted');
});

test('testing: required with testing set, an unlisted MX is reported by check but not skipped; mode none is no policy', async () => {
  const { policy } = setup();
  const listed = await policy.forHost('testing.test', 'mx.testing.test');
  assert.equal(listed.testing, true);
  assert.equal(listed.policyType, 'sts');
  const unlisted = await policy.forHost('testing.test', 'other.example');
  assert.equal(unlisted.skip, undefined);
  assert.equal(unlisted.testing, true);
  const c = unlisted.check({} as tls.PeerCertificate, true);
  assert.equal(!c.ok && c.result, 'validation-failure');
  const none = await policy.forHost('none.test', 'anything.example');
  assert.equal(none.mode, 'opportunistic');
  assert.equal(none.policyType, 'no-policy-found');
});

test('bad policies leave opportunistic TLS and are reported: malformed, oversized, slow, redirect, content-type, wrong certificate, 404', async () => {
  const { policy, failures } = setup();
  const cases: [string, string, RegExp][] = [
    ['malformed.test', 'sts-policy-invalid', /malformed line/],
    ['big.test', 'sts-policy-fetch-error', /exceeds 65536/],
    ['slow.test', 'sts-policy-fetch-error', /no complete answer within/],
    ['redirect.test', 'sts-policy-fetch-error', /HTTP 301 \(redirect to https:\/\/mta-sts\.good\.test\/\.well-known\/mta-sts\.txt not followed\)/],
    ['html.test', 'sts-policy-fetch-error', /content-type "text\/html" is not text\/plain/],
    ['wrongname.test', 'sts-webpki-invalid', /mta-sts\.wrongname\.test/],
    ['missing.test', 'sts-policy-fetch-error', /HTTP 404/],
  ];
  for (const [domain, result, reason] of cases) {
    const started = Date.now();
    const p = await policy.forHost(domain, `mx.${domain}`);
    assert.ok(Date.now() - started < 3000, `${domain}: bounded time`);
    assert.equal(p.mode, 'opportunistic', domain);
    assert.equal(p.skip, undefined, domain);
    const f = failures.find((x) => x.domain === domain);
    assert.ok(f, `${domain} reported`);
    assert.equal(f.result, result, domain);
    assert.match(f.reason, reason, domain);
  }
  // A failed fetch is not retried for every message (retry_after).
  const before = hits.get('mta-sts.malformed.test');
  await policy.forHost('malformed.test', 'mx.malformed.test');
  assert.equal(hits.get('mta-sts.malformed.test'), before);
  assert.equal(failures.filter((x) => x.domain === 'malformed.test').length, 1);
  // No TXT record: no fetch at all.
  const none = await policy.forHost('plain.test', 'mx.plain.test');
  assert.equal(none.policyType, 'no-policy-found');
  assert.equal(hits.has('mta-sts.plain.test'), false);
});

test('the cache survives a restart, keeps an enforce policy while a refresh fails, refetches on a new id or after max_age', async () => {
  let clock = Date.now();
  const now = () => clock;
  const first = setup({ now });
  assert.equal((await first.policy.forHost('cache.test', 'mx.cache.test')).policyType, 'sts');
  assert.equal(hits.get('mta-sts.cache.test'), 1);

  // A new process with the same data directory: no fetch, the policy applies from disk.
  const second = setup({ dataDir: first.dataDir, now });
  const fromDisk = await second.policy.forHost('cache.test', 'rogue.example');
  assert.equal(fromDisk.skip?.result, 'validation-failure');
  assert.equal(hits.get('mta-sts.cache.test'), 1);

  // The TXT record disappears (a downgrade attempt): the cached policy keeps applying.
  dns.set({ ...zone(IDS), '_mta-sts.cache.test': [] });
  assert.ok((await second.policy.forHost('cache.test', 'rogue.example')).skip);

  // The id changes while the policy host is broken: the refresh fails, the enforce policy stays.
  dns.set(zone({ ...IDS, 'cache.test': '2' }));
  answers.set('mta-sts.cache.test', text('garbage'));
  const stale = await second.policy.forHost('cache.test', 'rogue.example');
  assert.ok(stale.skip, 'cached enforce policy still applies');
  assert.equal(second.failures.at(-1)?.result, 'sts-policy-invalid');
  // ... and the broken host is not asked again for every message (retry_after).
  const tried = hits.get('mta-sts.cache.test');
  assert.ok((await second.policy.forHost('cache.test', 'rogue.example')).skip);
  assert.equal(hits.get('mta-sts.cache.test'), tried);
  assert.equal(second.failures.length, 1);

  // The host is repaired with a new policy: the next question under the new id fetches it.
  answers.set('mta-sts.cache.test', text('version: STSv1\nmode: enforce\nmx: rogue.example\nmax_age: 3600\n'));
  clock += 1000;
  const third = setup({ dataDir: first.dataDir, now });
  const fresh = await third.policy.forHost('cache.test', 'rogue.example');
  assert.equal(fresh.skip, undefined);
  assert.equal(fresh.mode, 'required');
  const onDisk = JSON.parse(fs.readFileSync(path.join(first.dataDir, 'mta-sts', 'cache.test.json'), 'utf8'));
  assert.equal(onDisk.id, '2');

  // After max_age the policy is fetched again even with the same id.
  const fetches = hits.get('mta-sts.cache.test')!;
  clock += 3601_000;
  await third.policy.forHost('cache.test', 'rogue.example');
  assert.equal(hits.get('mta-sts.cache.test'), fetches + 1);

  // Expired and the TXT record gone: no policy any more.
  dns.set({ ...zone(IDS), '_mta-sts.cache.test': [] });
  clock += 3601_000;
  assert.equal((await third.policy.forHost('cache.test', 'rogue.example')).policyType, 'no-policy-found');
  dns.set(zone(IDS));
});

test('per-domain overrides replace MTA-STS: required/webpki, required/none, opportunistic, none, and dane without DNSSEC', async () => {
  const { policy } = setup({
    domains: [
      { domain: 'good.test', tls: 'opportunistic' },
      { domain: 'bank.example', tls: 'required' },
      { domain: 'legacy.example', tls: 'required', verify: 'none' },
      { domain: 'never.example', tls: 'none' },
      { domain: 'dane.example', tls: 'required', verify: 'dane' },
    ],
  });
  const fetched = hits.get('mta-sts.good.test') ?? 0;
  const good = await policy.forHost('good.test', 'rogue.example');
  assert.deepEqual([good.mode, good.policyType, good.skip], ['opportunistic', 'config', undefined]);
  assert.equal(hits.get('mta-sts.good.test') ?? 0, fetched, 'no MTA-STS fetch for an overridden domain');
  const bank = await policy.forHost('bank.example', 'mx.bank.example');
  assert.deepEqual([bank.mode, bank.policyType], ['required', 'config']);
  const c = bank.check({ raw: Buffer.from('x'), valid_to: 'Jan 1 00:00:00 2020 GMT', valid_from: 'Jan 1 00:00:00 2019 GMT' } as tls.PeerCertificate, true);
  assert.equal(!c.ok && c.result, 'certificate-expired');
  const legacy = await policy.forHost('legacy.example', 'mx.legacy.example');
  assert.equal(legacy.mode, 'required');
  assert.deepEqual(legacy.check({} as tls.PeerCertificate, false, 'SELF_SIGNED'), { ok: true });
  assert.equal((await policy.forHost('never.example', 'mx.never.example')).mode, 'none');
  const dane = await policy.forHost('dane.example', 'mx.dane.example');
  assert.equal(dane.skip?.result, 'dane-required');
  assert.match(dane.skip!.reason, /dnssec_validating/);
});

test('config errors name the key and the fault', () => {
  const issues = (v: unknown) => {
    const r = outboundTlsConfigSchema.safeParse(v);
    assert.equal(r.success, false);
    return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
  };
  assert.match(issues({ domains: [{ domain: 'a.example', tls: 'must' }] }), /^domains\.0\.tls: .*"required"/);
  assert.match(issues({ domains: [{ domain: 'b.example' }, { domain: 'B.example' }] }), /^domains\.1\.domain: b\.example is listed twice/);
  assert.match(issues({ domains: [{ domain: 'not a domain' }] }), /^domains\.0\.domain: must be a domain name/);
  assert.equal(outboundTlsConfigSchema.safeParse({ mta_sts: { fetch_timeout: 'soon' } }).success, false);
});
