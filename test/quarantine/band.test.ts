// The quarantine band in the per-recipient decision (src/pipeline/policy.ts decide) and the
// digest schedule (src/quarantine/digest.ts nextRun).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, type RecipientPolicy } from '../../src/pipeline/policy.js';
import { DigestScheduler } from '../../src/quarantine/digest.js';
import { digestConfigSchema } from '../../src/quarantine/config.js';
import { silentLogger } from '../../src/log.js';

const T = { tag: 4, junk: 6, reject: 15 };
const sym = (score: number) => [{ name: 'X', score, reason: 'x' }];

describe('the quarantine floor in decide()', () => {
  it('holds the recipients it applies to: not Junk; a role address gets tag, an allow list or opt-out gets the mail', () => {
    const rcpts: RecipientPolicy[] = [{ exempt: false }, { exempt: true }, { exempt: false, list: 'allow' }, { exempt: false, optOut: true }];
    assert.deepEqual(decide(sym(1), rcpts, T, false, 'quarantine').actions, ['quarantine', 'tag', 'deliver', 'deliver']);
    assert.deepEqual(decide(sym(1), [{ exempt: false }], T, false, 'junk').actions, ['junk'], 'junk stays junk');
  });

  it('a score past reject still rejects when every recipient says so; a lone rejecting recipient is held, not put in Junk', () => {
    const all = decide(sym(20), [{ exempt: false }, { exempt: false }], T, false, 'quarantine');
    assert.equal(all.rejectAll, true);
    const mixed = decide(sym(20), [{ exempt: false }, { exempt: true }], T, false, 'quarantine');
    assert.deepEqual(mixed.actions, ['quarantine', 'tag']);
    assert.deepEqual(decide(sym(20), [{ exempt: false }, { exempt: true }], T, false).actions, ['junk', 'tag'], 'without the floor: Junk as before');
  });

  it('observe mode: nothing refused, the band still holds', () => {
    assert.deepEqual(decide(sym(20), [{ exempt: false }], T, true, 'quarantine').actions, ['tag']);
    assert.deepEqual(decide(sym(1), [{ exempt: false }], T, true, 'quarantine').actions, ['quarantine']);
  });
});

describe('the digest schedule', () => {
  const at = (iso: string) => Date.parse(iso);
  const next = (cfg: Record<string, unknown>, now: string) =>
    new Date(new DigestScheduler({
      config: digestConfigSchema.parse({ enabled: true, base_url: 'https://c.example.test', ...cfg }), hostname: 'mx.example.test',
      quarantine: undefined as never, links: undefined as never, logger: silentLogger(), deliver: async () => undefined, isLocal: () => true,
    }).nextRun(at(now))).toISOString();

  it('daily at 08:00 UTC by default: today if still ahead, else tomorrow', () => {
    assert.equal(next({}, '2026-12-07T07:59:00Z'), '2026-12-07T08:00:00.000Z');
    assert.equal(next({}, '2026-12-07T08:00:00Z'), '2026-12-08T08:00:00.000Z');
    assert.equal(next({}, '2026-12-07T15:20:00Z'), '2026-12-08T08:00:00.000Z');
  });

  it('every 6h from "02:30": the next slot of the day\'s grid', () => {
    assert.equal(next({ every: '6h', at: '02:30' }, '2026-12-07T15:20:00Z'), '2026-12-07T20:30:00.000Z');
    assert.equal(next({ every: '6h', at: '20:30' }, '2026-12-07T01:00:00Z'), '2026-12-07T02:30:00.000Z');
  });

  it('configuration errors name the key', () => {
    const r = digestConfigSchema.safeParse({ enabled: true });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues[0]!.path, ['base_url']);
    assert.deepEqual(digestConfigSchema.safeParse({ at: '8am' }).error!.issues[0]!.path, ['at']);
    assert.deepEqual(digestConfigSchema.safeParse({ base_url: 'http://c.example.test' }).error!.issues[0]!.path, ['base_url']);
  });
});
