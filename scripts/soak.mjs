#!/usr/bin/env node
// `npm run soak`: the long soak (test/soak/soak.ts) on the built tree. Needs root (tmpfs) and
// clamd. Options: --duration 10m (default), --clients 4, --fault 5s, --calm 10s, --out FILE
// (the report as JSON). Prints progress and the report; exits 1 if anything was lost.
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    clients: { type: 'string', default: '4' },
    fault: { type: 'string', default: '5s' },
    calm: { type: 'string', default: '10s' },
    out: { type: 'string' },
  },
});
const { parseDuration } = await import('../dist/src/config/units.js');
const { runSoak } = await import('../dist/test/soak/soak.js');
const ms = (v, name) => {
  const n = parseDuration(v);
  if (n === undefined) {
    console.error(`soak: --${name} ${JSON.stringify(v)} is not a duration (use e.g. 30s, 10m)`);
    process.exit(2);
  }
  return n;
};
const report = await runSoak({
  durationMs: ms(values.duration, 'duration'),
  clients: Number(values.clients),
  faultMs: ms(values.fault, 'fault'),
  calmMs: ms(values.calm, 'calm'),
  drainMs: 120_000,
  log: (l) => console.log(l),
});
console.log(JSON.stringify(report, null, 2));
if (values.out) fs.writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
const bad = report.lost + report.corrupt + report.unexpected;
console.log(`soak: ${report.duration_s} s, ${Object.values(report.connections).reduce((a, b) => a + b, 0)} connections, ${report.messages.acked} acked of ${report.messages.attempted}, faults ${JSON.stringify(report.faults)}, lost = ${report.lost}`);
process.exit(bad ? 1 : 0);
