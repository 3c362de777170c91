// The 2-minute soak inside `npm test` (the long one is `npm run soak`, docs/reliability.md):
// mixed load on every listener with each fault injected at least once; every acknowledged
// message must be delivered (or held), none corrupt, none where it was not addressed.
// SOAK_DURATION (e.g. 60s) shortens or lengthens it for a local run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/config/units.js';
import { strict } from '../helpers/clients.js';
import { FAULTS, runSoak, soakProblem } from './soak.js';

const durationMs = parseDuration(process.env.SOAK_DURATION ?? '120s') ?? 120_000;

test(`soak: ${durationMs / 1000} s of mixed load with every fault injected, nothing lost`, { timeout: durationMs + 170_000 }, async (t) => {
  const problem = soakProblem();
  if (problem) {
    if (strict) throw new Error(problem);
    return t.skip(problem);
  }
  // Eight faults of 5 s with 5 s of calm between fit in 2 minutes with a calm start.
  const report = await runSoak({ durationMs, clients: 4, faultMs: 5_000, calmMs: Math.min(5_000, Math.max(1_000, (durationMs - 8 * 5_000) / 9)), drainMs: 90_000, log: (l) => t.diagnostic(l) });
  t.diagnostic(`soak report: ${JSON.stringify(report)}`);
  for (const f of FAULTS) assert.ok(report.faults[f] >= 1, `fault ${f} was not injected: ${JSON.stringify(report.faults)}`);
  assert.ok(report.messages.acked >= 50, `too little got through to mean anything: ${JSON.stringify(report.messages)}`);
  assert.ok(report.reads.imap > 0 && report.reads.pop3 > 0, `the mailbox readers read: ${JSON.stringify(report.reads)}`);
  assert.ok(report.connections.submission! > 0 && report.connections.submissions! > 0, JSON.stringify(report.connections));
  assert.equal(report.lost, 0, `lost: ${report.lost_tokens.join(', ')}`);
  assert.equal(report.corrupt, 0, 'corrupt copies');
  assert.equal(report.unexpected, 0, 'copies of refused or unknown messages, or at a destination not addressed');
});
