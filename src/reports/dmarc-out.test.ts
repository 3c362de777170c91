// The pieces of the DMARC reports we send: rua parsing (what is a destination, its size limit),
// the daily counting, and the document, read back with our own reader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { buildAggregate, ruaOf } from './dmarc-out.js';
import { parseDmarcAggregate } from './dmarc-xml.js';
import { ReportsStore } from './store.js';
import type { DmarcObservation } from './dmarc-observation.js';
import { silentLogger } from '../log.js';

test('rua: mailto destinations with their size limits; anything else is no destination', () => {
  // The second decodes to two "@": not one plain address, so no destination.
  assert.deepEqual(ruaOf('v=DMARC1; p=reject; rua=mailto:agg@example.org!10m, mailto:B%40x@collector.example, mailto:C%2Bd@collector.example'), [
    { address: 'agg@example.org', maxBytes: 10 * 1024 * 1024 }, { address: 'c+d@collector.example' },
  ]);
  assert.deepEqual(ruaOf('v=DMARC1; rua=mailto:a@example.org!500'), [{ address: 'a@example.org', maxBytes: 500 }]);
  assert.deepEqual(ruaOf('v=DMARC1; rua=https://collector.example/dmarc, mailto:a@b?subject=x, mailto:nodomain'), []);
  assert.deepEqual(ruaOf('v=DMARC1; p=none'), []);
  assert.deepEqual(ruaOf('v=DMARC1;RUA=mailto:A@Example.ORG'), [{ address: 'a@example.org' }]);
});

const obs = (over: Partial<DmarcObservation>): DmarcObservation => ({
  at: Date.parse('2026-12-06T12:00:00Z'), sourceIp: '192.0.2.1', headerFrom: 'sender.example', envelopeFrom: 'sender.example',
  policyDomain: 'sender.example', record: 'v=DMARC1; p=quarantine; pct=50; adkim=s; rua=mailto:a@sender.example',
  disposition: 'none', reasons: [], dkimAligned: true, spfAligned: false,
  dkim: [{ domain: 'sender.example', selector: 's1', result: 'pass' }], spf: { domain: 'bounce.example', result: 'pass' }, ...over,
});

test('evaluations are counted per day, domain and distinct row; the document reads back as published', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmarc-out-'));
  const store = ReportsStore.open(path.join(dir, 'reports.db'), { now: () => Date.parse('2026-12-07T01:00:00Z') });
  try {
    const rep = store.dmarcReporter({
      config: { enabled: true, from: 'dmarc@example.org', org_name: 'Example Org', max_reports_per_day: 10 },
      hostname: 'mx.example.org', resolver: { lookup: async () => ({ status: 'nxdomain' }) } as never, logger: silentLogger(),
    });
    rep.record(obs({}));
    rep.record(obs({}));
    rep.record(obs({ sourceIp: '203.0.113.5', disposition: 'none', reasons: ['sampled_out'], dkimAligned: false, dkim: [] }));
    rep.record(obs({ at: Date.parse('2026-12-07T00:10:00Z') }));
    const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
    const rows = db.prepare("SELECT * FROM dmarc_out WHERE day = '2026-12-06' ORDER BY count DESC").all() as Record<string, unknown>[];
    assert.deepEqual(rows.map((r) => [r.source_ip, r.count]), [['192.0.2.1', 2], ['203.0.113.5', 1]]);
    const built = buildAggregate({ date: '2026-12-06', domain: 'sender.example', record: obs({}).record, rows, truncated: false, org: 'Example <Org> & Co', email: 'dmarc@example.org', hostname: 'mx.example.org' });
    assert.match(built.filename, /^example\.org!sender\.example!\d+!\d+\.xml\.gz$/);
    const back = parseDmarcAggregate(zlib.gunzipSync(built.gzip));
    assert.equal(back.orgName, 'Example <Org> & Co', 'markup in names is escaped');
    assert.deepEqual(back.policy, { p: 'quarantine', sp: 'quarantine', pct: 50, adkim: 's', aspf: 'r' });
    assert.equal(back.end - back.begin, 86_399);
    assert.deepEqual(back.records.map((r) => [r.sourceIp, r.count, r.dkim, r.spf, r.envelopeFrom]), [['192.0.2.1', 2, 'pass', 'fail', 'sender.example'], ['203.0.113.5', 1, 'fail', 'fail', 'sender.example']]);
    assert.deepEqual(back.records[0]!.authSpf, ['bounce.example=pass']);
    assert.match(built.xml, /<reason><type>sampled_out<\/type><\/reason>/);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
