// DANE (RFC 7672): TLSA records matched against certificate chains seen on real TLS sockets
// (a node:tls server and client on loopback), the digests computed by the openssl command line;
// and the policy's use of DANE through the loopback DNS server playing a validating resolver
// (the AD bit): secure-only, precedence over MTA-STS, unusable sets, lookup failures.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createResolver } from '../../dns/resolver.js';
import type { TlsaRecord } from '../../dns/types.js';
import { silentLogger } from '../../log.js';
import { outboundTlsConfigSchema } from './config.js';
import { createTlsPolicy } from './policy.js';
import { checkDane, isUsableTlsa } from './dane.js';
import { startDnsServer, type DnsServer } from '../../../test/helpers/dns-server.js';
import { createTestPki, type Issued, type TestPki } from '../../../test/helpers/test-pki.js';

let pki: TestPki;
let good: Issued;
let expired: Issued;
let otherName: Issued;
let stranger: Issued;

/** openssl's digest of a certificate (selector 0) or its SubjectPublicKeyInfo (selector 1). */
function association(pem: string, selector: 0 | 1, matching: 0 | 1 | 2): Buffer {
  const der = selector === 0
    ? execFileSync('openssl', ['x509', '-outform', 'DER'], { input: pem })
    : execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: execFileSync('openssl', ['x509', '-pubkey', '-noout'], { input: pem }) });
  if (matching === 0) return der;
  return execFileSync('openssl', ['dgst', matching === 1 ? '-sha256' : '-sha512', '-binary'], { input: der });
}
const tlsa = (usage: number, selector: 0 | 1, matchingType: 0 | 1 | 2, pem: string): TlsaRecord =>
  ({ usage, selector, matchingType, data: association(pem, selector, matchingType) });

/** The peer certificate chain a client sees from a server presenting `chain`. */
async function peerOf(chain: string, key: string): Promise<tls.PeerCertificate> {
  const srv = tls.createServer({ cert: chain, key });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'mx.dane.test', rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate(true));
        s.end();
      });
      s.on('error', reject);
    });
  } finally {
    srv.close();
  }
}

before(() => {
  pki = createTestPki();
  good = pki.issue('mx.dane.test');
  expired = pki.issue('mx.dane.test', { expired: true });
  otherName = pki.issue('mx.elsewhere.test');
  stranger = pki.issue('mx.dane.test', { selfSigned: true });
});
after(() => pki?.remove());

test('DANE-EE(3): the leaf certificate or its key, in full, SHA-256 or SHA-512; no name or date checks', async () => {
  const peer = await peerOf(good.chain, good.key);
  for (const [s, m] of [[1, 1], [0, 1], [0, 2], [1, 2], [0, 0], [1, 0]] as const) {
    assert.deepEqual(checkDane([tlsa(3, s, m, good.cert)], peer, 'mx.dane.test'), { ok: true }, `3 ${s} ${m}`);
  }
  const r = checkDane([tlsa(3, 1, 1, otherName.cert)], peer, 'mx.dane.test');
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.result, 'tlsa-invalid');
  // The DNS binds the key: an expired certificate with another name still matches DANE-EE.
  const old = await peerOf(expired.chain, expired.key);
  assert.deepEqual(checkDane([tlsa(3, 1, 1, expired.cert)], old, 'mx.other.test'), { ok: true });
  // A record of the intermediate is not DANE-EE for the leaf.
  assert.equal(checkDane([tlsa(3, 0, 1, pki.intermediate)], peer, 'mx.dane.test').ok, false);
});

test('DANE-TA(2): a certificate of the sent chain above the leaf, with the name and dates of the leaf checked', async () => {
  const peer = await peerOf(good.chain, good.key);
  assert.deepEqual(checkDane([tlsa(2, 0, 1, pki.intermediate)], peer, 'mx.dane.test'), { ok: true });
  assert.deepEqual(checkDane([tlsa(2, 1, 1, pki.intermediate)], peer, 'mx.dane.test'), { ok: true });
  // The root too, when the server sends it.
  const full = await peerOf(good.chain + pki.root, good.key);
  assert.deepEqual(checkDane([tlsa(2, 0, 2, pki.root)], full, 'mx.dane.test'), { ok: true });
  // The leaf itself is no trust anchor.
  assert.equal(checkDane([tlsa(2, 0, 1, good.cert)], peer, 'mx.dane.test').ok, false);
  const wrong = checkDane([tlsa(2, 0, 1, pki.intermediate)], await peerOf(otherName.chain, otherName.key), 'mx.dane.test');
  assert.equal(!wrong.ok && wrong.result, 'certificate-host-mismatch');
  const old = checkDane([tlsa(2, 0, 1, pki.intermediate)], await peerOf(expired.chain, expired.key), 'mx.dane.test');
  assert.equal(!old.ok && old.result, 'certificate-expired');
  // A self-signed leaf that merely sends the intermediate along is not signed by it (the chain
  // the TLS stack builds from issuer links never reaches the intermediate).
  const forged = checkDane([tlsa(2, 0, 1, pki.intermediate)], await peerOf(stranger.cert + pki.intermediate, stranger.key), 'mx.dane.test');
  assert.equal(!forged.ok && forged.result, 'tlsa-invalid');
  assert.match(!forged.ok ? forged.reason : '', /no TLSA record of mx\.dane\.test matches/);
  // Even when a chain links them, the signatures are checked.
  const der = (pem: string) => new X509Certificate(pem).raw;
  const linked = { raw: der(stranger.cert), fingerprint256: 'leaf', issuerCertificate: { raw: der(pki.intermediate), fingerprint256: 'ta' } } as unknown as tls.PeerCertificate;
  const unsigned = checkDane([tlsa(2, 0, 1, pki.intermediate)], linked, 'mx.dane.test');
  assert.equal(!unsigned.ok && unsigned.result, 'tlsa-invalid');
  assert.match(!unsigned.ok ? unsigned.reason : '', /is not signed by/);
});

test('usable records: DANE-TA/EE, selectors 0/1, matching 0/1/2 with the right digest length; PKIX-TA/EE are not', () => {
  const d32 = Buffer.alloc(32, 1);
  assert.equal(isUsableTlsa({ usage: 3, selector: 1, matchingType: 1, data: d32 }), true);
  assert.equal(isUsableTlsa({ usage: 2, selector: 0, matchingType: 2, data: Buffer.alloc(64) }), true);
  assert.equal(isUsableTlsa({ usage: 0, selector: 1, matchingType: 1, data: d32 }), false);
  assert.equal(isUsableTlsa({ usage: 1, selector: 1, matchingType: 1, data: d32 }), false);
  assert.equal(isUsableTlsa({ usage: 3, selector: 2, matchingType: 1, data: d32 }), false);
  assert.equal(isUsableTlsa({ usage: 3, selector: 1, matchingType: 3, data: d32 }), false);
  assert.equal(isUsableTlsa({ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(20) }), false);
  assert.equal(isUsableTlsa({ usage: 3, selector: 1, matchingType: 0, data: Buffer.alloc(0) }), false);
});

test('the policy: DANE only on secure answers, before MTA-STS; unusable → TLS without authentication; SERVFAIL → skip', async () => {
  const ee = (pem: string) => ({ type: 'TLSA' as const, data: tlsa(3, 1, 1, pem) });
  const secureDomain = (d: string, extra: Record<string, unknown[]> = {}) => ({
    [d]: [{ type: 'MX', data: { priority: 10, exchange: `mx.${d}` } }],
    [`mx.${d}`]: [{ type: 'A', data: '127.0.0.1' }],
    [`_mta-sts.${d}`]: [{ type: 'TXT', data: 'v=STSv1; id=1' }],
    ...extra,
  });
  const dns: DnsServer = await startDnsServer({
    ...secureDomain('dane.test', { '_25._tcp.mx.dane.test': [ee(good.cert)] }),
    ...secureDomain('unusable.test', { '_25._tcp.mx.unusable.test': [{ type: 'TLSA', data: tlsa(1, 1, 1, good.cert) }] }),
    ...secureDomain('servfail.test', { '_25._tcp.mx.servfail.test': [{ type: 'SERVFAIL' }] }),
    ...secureDomain('notlsa.test'),
    ...secureDomain('insecuretlsa.test', { '_25._tcp.mx.insecuretlsa.test': [ee(good.cert)] }),
    ...secureDomain('insecuremx.test', { '_25._tcp.mx.insecuremx.test': [ee(good.cert)] }),
  } as Parameters<typeof startDnsServer>[0], {
    adFor: (name) => !name.startsWith('_25._tcp.mx.insecuretlsa.') && name !== 'insecuremx.test',
  });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dane-'));
  try {
    const make = (validating: boolean, domains: unknown[] = []) => createTlsPolicy({
      config: outboundTlsConfigSchema.parse({ domains, mta_sts: { fetch_timeout: '300ms' } }),
      resolver: createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, maxInflight: 50, cacheEntries: 100, maxTtlMs: 60_000, negativeTtlMs: 1000, dnssecValidating: validating }),
      dataDir, logger: silentLogger(), dnssecValidating: validating,
    });
    const policy = make(true);

    const p = await policy.forHost('dane.test', 'mx.dane.test');
    assert.deepEqual([p.mode, p.policyType, p.skip], ['required', 'tlsa', undefined]);
    assert.deepEqual(p.check(await peerOf(good.chain, good.key), false, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), { ok: true });
    const mismatch = p.check(await peerOf(otherName.chain, otherName.key), true);
    assert.equal(!mismatch.ok && mismatch.result, 'tlsa-invalid');
    assert.equal(dns.queries.includes('TXT _mta-sts.dane.test'), false, 'DANE takes precedence: MTA-STS not consulted');
    assert.deepEqual(policy.details(p), { policyDomain: 'mx.dane.test', policyString: [`3 1 1 ${association(good.cert, 1, 1).toString('hex')}`], mxHost: ['mx.dane.test'] });

    const unusable = await policy.forHost('unusable.test', 'mx.unusable.test');
    assert.deepEqual([unusable.mode, unusable.policyType, unusable.skip], ['required', 'tlsa', undefined]);
    assert.deepEqual(unusable.check(await peerOf(stranger.cert, stranger.key), false, 'DEPTH_ZERO_SELF_SIGNED_CERT'), { ok: true });

    const servfail = await policy.forHost('servfail.test', 'mx.servfail.test');
    assert.equal(servfail.skip?.result, 'dnssec-invalid');
    assert.match(servfail.skip!.reason, /_25\._tcp\.mx\.servfail\.test/);

    // No TLSA, an insecure TLSA RRset, an insecure MX RRset: no DANE; MTA-STS is then consulted.
    for (const d of ['notlsa.test', 'insecuretlsa.test', 'insecuremx.test']) {
      const q = await policy.forHost(d, `mx.${d}`);
      assert.equal(q.policyType, 'no-policy-found', d);
      assert.equal(q.mode, 'opportunistic', d);
      assert.ok(dns.queries.includes(`TXT _mta-sts.${d}`), `${d}: MTA-STS consulted`);
    }

    // AD bits mean nothing unless the operator declares the resolver validating.
    const trusting = make(false);
    assert.equal((await trusting.forHost('dane.test', 'mx.dane.test')).policyType, 'no-policy-found');
    assert.equal((await trusting.forHost('servfail.test', 'mx.servfail.test')).skip, undefined);

    // verify: dane in an override: DANE when present, otherwise the MX is not used.
    const strict = make(true, [{ domain: 'dane.test', verify: 'dane' }, { domain: 'notlsa.test', verify: 'dane' }]);
    const s1 = await strict.forHost('dane.test', 'mx.dane.test');
    assert.deepEqual([s1.mode, s1.policyType], ['required', 'config']);
    assert.equal(s1.check(await peerOf(otherName.chain, otherName.key), true).ok, false);
    assert.equal((await strict.forHost('notlsa.test', 'mx.notlsa.test')).skip?.result, 'dane-required');
  } finally {
    await dns.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
