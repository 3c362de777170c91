import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../log.js';
import type { HostTlsPolicy, TlsAttempt } from '../outbound-tls.js';
import { createTlsRptStore } from './tlsrpt-aggregate.js';
import { buildReport } from './tlsrpt-report.js';

const policy = (policyType: HostTlsPolicy['policyType']) =>
  ({ mode: 'required', servername: 'mx.d.test', testing: false, policyType, check: () => ({ ok: true }) }) as HostTlsPolicy;
const details = { policyDomain: 'd.test', policyString: ['version: STSv1'], mxHost: ['mx.d.test'] };
const attempt = (over: Partial<TlsAttempt> = {}): TlsAttempt =>
  ({ domain: 'D.test', mxHost: 'mx.d.test.', receivingIp: '192.0.2.1', sendingIp: '198.51.100.1', policy: policy('sts'), result: 'success', ...over });

test('counts per domain and policy; failure details grouped and capped; overrides not reported; policy failures counted', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-'));
  try {
    const store = createTlsRptStore({ dataDir, logger: silentLogger(), now: () => Date.parse('2026-03-01T23:59:59Z') });
    store.record(attempt(), details);
    store.record(attempt({ policy: policy('config') }), details);
    for (let i = 0; i < 300; i++) store.record(attempt({ result: 'certificate-expired', receivingIp: `192.0.2.${i % 250}`, detail: 'x' }), details);
    store.record(attempt({ result: 'certificate-expired', receivingIp: '192.0.2.1', detail: 'x' }), details);
    store.policyFailure('d.test', 'sts-policy-fetch-error', 'mta-sts.d.test: HTTP 500');
    const day = store.day('2026-03-01');
    assert.deepEqual(Object.keys(day.domains), ['d.test']);
    const aggs = Object.values(day.domains['d.test']!);
    assert.equal(aggs.length, 2, 'the attempts\' policy and the policy that could not be fetched');
    const sts = aggs.find((a) => a.policy.strings.length === 1)!;
    assert.equal(sts.success, 1, 'the override attempt is not counted');
    assert.equal(sts.failure, 301);
    assert.equal(Object.keys(sts.details).length, 200, 'distinct details are capped');
    assert.equal(Object.values(sts.details).find((d) => d.receivingIp === '192.0.2.1')!.count, 3);
    assert.equal(Object.values(sts.details)[0]!.receivingMxHostname, 'mx.d.test');
    const fetch = aggs.find((a) => a.policy.strings.length === 0)!;
    assert.deepEqual([fetch.failure, Object.values(fetch.details)[0]!.resultType], [1, 'sts-policy-fetch-error']);
    const report = buildReport(day, 'd.test', { organization: 'o', contact: 'c', submitter: 's.test' })!;
    assert.equal(report.json.policies.reduce((n, p) => n + p.summary['total-failure-session-count'], 0), 302);
    assert.equal(buildReport(day, 'other.test', { organization: 'o', contact: 'c', submitter: 's.test' }), undefined);
    store.close();
    assert.ok(fs.existsSync(path.join(dataDir, 'tls-rpt', '2026-03-01.json')));
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('an unreadable day file is ignored, old days are pruned', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agg-'));
  try {
    fs.mkdirSync(path.join(dataDir, 'tls-rpt'));
    fs.writeFileSync(path.join(dataDir, 'tls-rpt', '2026-03-10.json'), '{"date": "2026-03-10", "domains": ');
    fs.writeFileSync(path.join(dataDir, 'tls-rpt', '2026-01-01.json'), '{}');
    fs.writeFileSync(path.join(dataDir, 'tls-rpt', 'notes.txt'), 'kept');
    const store = createTlsRptStore({ dataDir, logger: silentLogger(), now: () => Date.parse('2026-03-10T08:00:00Z') });
    store.record(attempt(), details);
    assert.equal(Object.values(store.day('2026-03-10').domains['d.test']!)[0]!.success, 1);
    store.prune(14);
    store.close();
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tls-rpt')).sort(), ['2026-03-10.json', 'notes.txt']);
    const reread = createTlsRptStore({ dataDir, logger: silentLogger(), now: () => Date.parse('2026-03-10T09:00:00Z') });
    assert.equal(Object.values(reread.day('2026-03-10').domains['d.test']!)[0]!.success, 1);
    reread.close();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
