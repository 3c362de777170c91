// The audit's DNS checks against an independent authoritative server on loopback (dns2):
// every misconfiguration is found, every good record passes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startDnsServer, type DnsServer, type ZoneData } from '../../test/helpers/dns-server.js';
import { createResolver } from '../dns/resolver.js';
import type { Resolver } from '../dns/types.js';
import { compileLists } from '../checks/dnsbl/dnsbl.js';
import { checkBlocklists, checkReverseDns } from './address-checks.js';
import { checkDkim, checkDmarc, checkMtaSts, checkTlsRpt, parseTags } from './dns-checks.js';
import { checkSpf } from './spf-audit.js';
import type { Finding } from './findings.js';

const txt = (data: string) => ({ type: 'TXT' as const, data });

function keyBase64(bits: number): string {
  const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  return publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
}

function only(findings: readonly Finding[], code: string): Finding {
  const hits = findings.filter((f) => f.code === code);
  assert.equal(hits.length, 1, `expected one ${code} in:\n${findings.map((f) => `${f.severity} ${f.code}: ${f.title}`).join('\n')}`);
  return hits[0]!;
}

function codes(findings: readonly Finding[]): string[] {
  return findings.map((f) => f.code).sort();
}

describe('audit DNS checks', () => {
  let dns: DnsServer;
  let resolver: Resolver;
  const includes: ZoneData = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`i${i + 1}.test`, [txt(`v=spf1 ip4:198.51.100.${i + 1} -all`)]]));
  const ed25519 = crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');

  before(async () => {
    dns = await startDnsServer({
      ...includes,
      // SPF
      'good.test': [txt('v=spf1 mx -all'), { type: 'MX', data: { priority: 10, exchange: 'mx.good.test' } }],
      'mx.good.test': [{ type: 'A', data: '192.0.2.10' }],
      'soft.test': [txt('v=spf1 ip4:192.0.2.0/24 ~all')],
      'passall.test': [txt('v=spf1 +all')],
      'everything.test': [txt('v=spf1 ip4:0.0.0.0/0 -all')],
      'neutral.test': [txt('v=spf1 ip4:192.0.2.1 ?all')],
      'noall.test': [txt('v=spf1 ip4:192.0.2.1')],
      'syntax.test': [txt('v=spf1 ip4:999.1.1.1 -all')],
      'twice.test': [txt('v=spf1 -all'), txt('v=spf1 ~all')],
      'nospf.test': [txt('google-site-verification=abc')],
      'many.test': [txt(`v=spf1 ${Array.from({ length: 11 }, (_, i) => `include:i${i + 1}.test`).join(' ')} -all`)],
      'ten.test': [txt(`v=spf1 ${Array.from({ length: 10 }, (_, i) => `include:i${i + 1}.test`).join(' ')} -all`)],
      'broken.test': [txt('v=spf1 include:missing.test -all')],
      'loop.test': [txt('v=spf1 include:loop2.test -all')],
      'loop2.test': [txt('v=spf1 include:loop.test -all')],
      'ptr.test': [txt('v=spf1 ptr -all')],
      'redirect.test': [txt('v=spf1 redirect=good.test')],
      'voids.test': [txt('v=spf1 a:no1.test a:no2.test a:no3.test -all')],
      // DMARC
      '_dmarc.good.test': [txt('v=DMARC1; p=reject; rua=mailto:d@good.test')],
      '_dmarc.soft.test': [txt('v=DMARC1; p=none; rua=mailto:d@soft.test')],
      '_dmarc.passall.test': [txt('v=DMARC1; p=quarantine; pct=50; sp=none')],
      '_dmarc.syntax.test': [txt('v=DMARC1; p=maybe')],
      '_dmarc.twice.test': [txt('v=DMARC1; p=reject'), txt('v=DMARC1; p=none')],
      '_dmarc.neutral.test': [txt('p=reject; v=DMARC1')],
      '_dmarc.org.test': [txt('v=DMARC1; p=reject; rua=mailto:d@org.test')],
      'sub.org.test': [{ type: 'A', data: '192.0.2.99' }],
      // DKIM
      'rsa2048._domainkey.good.test': [txt(`v=DKIM1; k=rsa; p=${keyBase64(2048)}`)],
      'rsa1024._domainkey.good.test': [txt(`v=DKIM1; k=rsa; p=${keyBase64(1024)}`)],
      'rsa512._domainkey.good.test': [txt(`v=DKIM1; k=rsa; p=${keyBase64(512)}`)],
      'ed._domainkey.good.test': [txt(`v=DKIM1; k=ed25519; p=${ed25519}`)],
      'revoked._domainkey.good.test': [txt('v=DKIM1; k=rsa; p=')],
      'garbage._domainkey.good.test': [txt('v=DKIM1; k=rsa; p=bm90IGEga2V5')],
      'testing._domainkey.good.test': [txt(`v=DKIM1; t=y; p=${ed25519}; k=ed25519`)],
      // MTA-STS and TLS-RPT
      '_mta-sts.good.test': [txt('v=STSv1; id=20240101T000000')],
      '_mta-sts.soft.test': [txt('v=STSv1; id=not valid!')],
      '_smtp._tls.good.test': [txt('v=TLSRPTv1; rua=mailto:tls@good.test,https://reports.good.test/tls')],
      '_smtp._tls.soft.test': [txt('v=TLSRPTv1; rua=http://insecure.example/')],
      // Reverse DNS
      '10.2.0.192.in-addr.arpa': [{ type: 'PTR', data: 'mx.good.test' }],
      '11.2.0.192.in-addr.arpa': [{ type: 'PTR', data: 'nowhere.good.test' }],
      '12.2.0.192.in-addr.arpa': [{ type: 'PTR', data: 'dsl-192-0-2-12.pool.isp.test' }],
      'dsl-192-0-2-12.pool.isp.test': [{ type: 'A', data: '192.0.2.12' }],
      '13.2.0.192.in-addr.arpa': [{ type: 'SERVFAIL' }],
      // DNS lists
      '20.2.0.192.bl.test': [{ type: 'A', data: '127.0.0.2' }, txt('Listed: seen sending spam')],
      '21.2.0.192.bl.test': [{ type: 'A', data: '127.255.255.254' }],
      '22.2.0.192.wl.test': [{ type: 'A', data: '127.0.10.2' }],
    });
    resolver = createResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 1, maxInflight: 100, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });
  });

  after(() => dns.close());

  describe('SPF', () => {
    test('a good record passes: valid, "-all", few lookups, and the MX address permitted', async () => {
      const f = await checkSpf(resolver, 'good.test', [{ host: 'mx.good.test', address: '192.0.2.10' }]);
      assert.deepEqual(codes(f), ['SPF_COVERS_MX', 'SPF_LOOKUPS_OK', 'SPF_POLICY']);
      assert.ok(f.every((x) => x.severity === 'ok'));
      assert.match(only(f, 'SPF_POLICY').title, /"-all"/);
      assert.match(only(f, 'SPF_COVERS_MX').evidence, /192\.0\.2\.10\]: pass/);
    });

    test('"~all" is fine; an MX address outside the record is a warning', async () => {
      const f = await checkSpf(resolver, 'soft.test', [{ host: 'mx.soft.test', address: '198.51.100.7' }]);
      assert.equal(only(f, 'SPF_POLICY').severity, 'ok');
      const miss = only(f, 'SPF_MX_NOT_COVERED');
      assert.equal(miss.severity, 'warning');
      assert.match(miss.evidence, /198\.51\.100\.7\]: softfail/);
    });

    test('"+all" and ip4:0.0.0.0/0 permit everyone: critical', async () => {
      assert.equal(only(await checkSpf(resolver, 'passall.test', []), 'SPF_PASS_ALL').severity, 'critical');
      const f = only(await checkSpf(resolver, 'everything.test', []), 'SPF_PASS_ALL');
      assert.match(f.title, /ip4:0\.0\.0\.0\/0/);
    });

    test('"?all" and a record without "all" are warnings', async () => {
      assert.equal(only(await checkSpf(resolver, 'neutral.test', []), 'SPF_NEUTRAL_ALL').severity, 'warning');
      assert.equal(only(await checkSpf(resolver, 'noall.test', []), 'SPF_NO_ALL').severity, 'warning');
      // A redirect stands for the "all" of the target.
      assert.match(only(await checkSpf(resolver, 'redirect.test', []), 'SPF_POLICY').title, /redirects to good\.test/);
    });

    test('syntax errors, two records, and no record at all', async () => {
      const syntax = only(await checkSpf(resolver, 'syntax.test', []), 'SPF_SYNTAX');
      assert.equal(syntax.severity, 'critical');
      assert.match(syntax.evidence, /999\.1\.1\.1/);
      assert.equal(only(await checkSpf(resolver, 'twice.test', []), 'SPF_MULTIPLE').severity, 'critical');
      const none = only(await checkSpf(resolver, 'nospf.test', []), 'SPF_MISSING');
      assert.match(none.evidence, /google-site-verification/);
      only(await checkSpf(resolver, 'nxdomain.test', []), 'SPF_MISSING');
    });

    test('eleven DNS-querying terms exceed the limit; ten do not', async () => {
      const many = only(await checkSpf(resolver, 'many.test', []), 'SPF_TOO_MANY_LOOKUPS');
      assert.equal(many.severity, 'critical');
      assert.match(many.title, /needs 11 DNS lookups/);
      assert.match(many.evidence, /include:i11\.test/);
      assert.match(only(await checkSpf(resolver, 'ten.test', []), 'SPF_LOOKUPS_OK').title, /^10 DNS lookups/);
    });

    test('broken includes, include loops, void lookups and "ptr"', async () => {
      const broken = only(await checkSpf(resolver, 'broken.test', []), 'SPF_INCLUDE_BROKEN');
      assert.match(broken.title, /no SPF record at missing\.test/);
      assert.match(only(await checkSpf(resolver, 'loop.test', []), 'SPF_INCLUDE_BROKEN').title, /loops back/);
      assert.equal(only(await checkSpf(resolver, 'voids.test', []), 'SPF_VOID_LOOKUPS').severity, 'warning');
      assert.equal(only(await checkSpf(resolver, 'ptr.test', []), 'SPF_PTR').severity, 'info');
    });
  });

  describe('DMARC', () => {
    test('p=reject passes; p=none is a warning; pct and sp=none are notes', async () => {
      assert.deepEqual(codes(await checkDmarc(resolver, 'good.test')), ['DMARC_POLICY']);
      assert.equal(only(await checkDmarc(resolver, 'soft.test'), 'DMARC_POLICY_NONE').severity, 'warning');
      const partial = await checkDmarc(resolver, 'passall.test');
      assert.deepEqual(codes(partial), ['DMARC_NO_REPORTS', 'DMARC_PARTIAL', 'DMARC_POLICY', 'DMARC_SUBDOMAINS_NONE']);
    });

    test('missing, invalid, duplicated', async () => {
      assert.equal(only(await checkDmarc(resolver, 'nospf.test'), 'DMARC_MISSING').severity, 'warning');
      assert.match(only(await checkDmarc(resolver, 'syntax.test'), 'DMARC_SYNTAX').title, /p=maybe/);
      assert.equal(only(await checkDmarc(resolver, 'twice.test'), 'DMARC_MULTIPLE').severity, 'critical');
      // "v=DMARC1" must come first (RFC 7489 s6.4): this record is not DMARC at all.
      only(await checkDmarc(resolver, 'neutral.test'), 'DMARC_MISSING');
    });

    test('a subdomain inherits the organisational domain\'s record', async () => {
      const f = only(await checkDmarc(resolver, 'sub.org.test'), 'DMARC_POLICY');
      assert.match(f.evidence, /organisational domain/);
    });
  });

  describe('DKIM', () => {
    test('good keys pass, short ones are flagged, revoked and missing ones found', async () => {
      const f = await checkDkim(resolver, 'good.test', ['rsa2048', 'rsa1024', 'rsa512', 'ed', 'revoked', 'garbage', 'absent', 'testing']);
      const by = (sel: string) => f.filter((x) => x.target.startsWith(`${sel}._domainkey`)).map((x) => `${x.severity} ${x.code}`);
      assert.deepEqual(by('rsa2048'), ['ok DKIM_KEY']);
      assert.deepEqual(by('rsa1024'), ['info DKIM_KEY_SHORT']);
      assert.deepEqual(by('rsa512'), ['critical DKIM_KEY_WEAK']);
      assert.deepEqual(by('ed'), ['ok DKIM_KEY']);
      assert.deepEqual(by('revoked'), ['warning DKIM_KEY_REVOKED']);
      assert.deepEqual(by('garbage'), ['critical DKIM_KEY_INVALID']);
      assert.deepEqual(by('absent'), ['warning DKIM_KEY_MISSING']);
      assert.deepEqual(by('testing'), ['ok DKIM_KEY', 'info DKIM_TESTING']);
    });

    test('without selectors, a note says why DKIM was not checked', async () => {
      assert.deepEqual(codes(await checkDkim(resolver, 'good.test', [])), ['DKIM_NOT_CHECKED']);
    });
  });

  test('MTA-STS and TLS-RPT records: present, invalid, missing', async () => {
    assert.deepEqual(codes(await checkMtaSts(resolver, 'good.test')), ['MTA_STS']);
    assert.equal(only(await checkMtaSts(resolver, 'soft.test'), 'MTA_STS_INVALID').severity, 'warning');
    assert.equal(only(await checkMtaSts(resolver, 'nospf.test'), 'MTA_STS_MISSING').severity, 'info');
    assert.deepEqual(codes(await checkTlsRpt(resolver, 'good.test')), ['TLS_RPT']);
    assert.equal(only(await checkTlsRpt(resolver, 'soft.test'), 'TLS_RPT_INVALID').severity, 'warning');
    assert.equal(only(await checkTlsRpt(resolver, 'nospf.test'), 'TLS_RPT_MISSING').severity, 'info');
  });

  test('reverse DNS: confirmed, unconfirmed, none, generic, DNS error', async () => {
    assert.deepEqual(codes(await checkReverseDns(resolver, 'mx.good.test', '192.0.2.10')), ['RDNS_OK']);
    assert.deepEqual(codes(await checkReverseDns(resolver, 'mx.good.test', '192.0.2.11')), ['RDNS_NOT_FCRDNS']);
    assert.deepEqual(codes(await checkReverseDns(resolver, 'mx.good.test', '192.0.2.14')), ['RDNS_NONE']);
    const generic = await checkReverseDns(resolver, 'mx.good.test', '192.0.2.12');
    assert.deepEqual(codes(generic), ['RDNS_DYNAMIC', 'RDNS_OK']);
    assert.match(only(generic, 'RDNS_DYNAMIC').evidence, /dsl-192-0-2-12/);
    assert.deepEqual(codes(await checkReverseDns(resolver, 'mx.good.test', '192.0.2.13')), ['RDNS_DNS_ERROR']);
  });

  test('DNS lists: listed (with the list\'s reason), clean, refused, allowlisted, none configured', async () => {
    const lists = compileLists({ lists: [{ zone: 'bl.test', weight: 1, codes: [] }, { zone: 'wl.test', weight: -1, codes: [] }], threshold: 1 });
    const listed = only(await checkBlocklists(resolver, lists, 'mx', '192.0.2.20'), 'DNSBL_LISTED');
    assert.equal(listed.severity, 'critical');
    assert.match(listed.evidence, /20\.2\.0\.192\.bl\.test: 127\.0\.0\.2 "Listed: seen sending spam"/);
    assert.deepEqual(codes(await checkBlocklists(resolver, lists, 'mx', '192.0.2.30')), ['DNSBL_CLEAN']);
    assert.deepEqual(codes(await checkBlocklists(resolver, lists, 'mx', '192.0.2.21')), ['DNSBL_UNKNOWN']);
    assert.deepEqual(codes(await checkBlocklists(resolver, lists, 'mx', '192.0.2.22')), ['DNSBL_CLEAN', 'DNSWL_LISTED']);
    assert.deepEqual(codes(await checkBlocklists(resolver, [], 'mx', '192.0.2.20')), ['DNSBL_NOT_CHECKED']);
  });

  test('tag lists parse as RFC 7489 s6.4 writes them', () => {
    assert.deepEqual([...parseTags('v=DMARC1; p=reject ;rua=mailto:a@b;')!], [['v', 'DMARC1'], ['p', 'reject'], ['rua', 'mailto:a@b']]);
    assert.equal(parseTags('v=DMARC1; p'), undefined);
    assert.equal(parseTags('v=DMARC1; p=none; p=reject'), undefined);
  });
});
