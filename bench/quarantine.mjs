// Quarantine listing at scale: fills an index with QBENCH_ROWS entries (default 100,000; rows
// straight into index.db — the originals do not matter for listing), then times
// Quarantine.list() per query form, QBENCH_RUNS times each (default 200), and prints p50/p99 in ms
// (JSON with --json). bench/console.mjs fills its quarantine with fillQuarantineIndex() too and
// times the console's pages over it.
//   node bench/quarantine.mjs [--json]        (after `npm run build`)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/**
 * Writes `rows` entries straight into the index.db of a quarantine opened once before
 * (`<dir>/quarantine/index.db`): 5,000 senders, 1,000 recipients (a quarter of the entries with
 * two), one subject in 1,000 with "needle", one in ten released. Returns the time it took in ms.
 */
export function fillQuarantineIndex(dir, rows, now = Date.now()) {
  const db = new Database(path.join(dir, 'quarantine', 'index.db'));
  const reasons = ['attachment_stripped', 'attachment_defanged', 'virus', 'policy_band'];
  const t0 = performance.now();
  db.transaction(() => {
    const m = db.prepare(`INSERT INTO messages (id, time, reason, sender, subject, message_id, queue_id, score, symbols, detail, size, state, stored) VALUES (?, ?, ?, ?, ?, ?, ?, 5, ?, NULL, 4000, ?, 1)`);
    const r = db.prepare(`INSERT INTO recipients (id, address, time, state) VALUES (?, ?, ?, ?)`);
    const s = db.prepare('INSERT INTO search (rowid, text) VALUES (?, ?)');
    const symbols = JSON.stringify([{ name: 'GTUBE', score: 5, reason: 'test string' }, { name: 'SPF_FAIL', score: 2, reason: 'spf fail for example.net' }]);
    for (let k = 0; k < rows; k++) {
      const id = `b${String(k).padStart(15, '0')}`;
      const time = now - k * 1000;
      const subject = `Subject ${k} ${k % 1000 === 7 ? 'needle' : 'hay'} ${['invoice', 'meeting', 'offer'][k % 3]}`;
      const sender = `sender${k % 5000}@example.net`;
      const state = k % 10 === 0 ? 'released' : 'held';
      const info = m.run(id, time, reasons[k % 4], sender, subject, `<${k}@example.net>`, `Q${k}`, symbols, state);
      const rcpts = [`user${k % 1000}@example.test`, ...(k % 4 === 0 ? [`user${(k + 1) % 1000}@example.test`] : [])];
      for (const a of rcpts) r.run(id, a, time, state);
      s.run(info.lastInsertRowid, [subject, sender, `<${k}@example.net>`, ...rcpts].join('\n'));
    }
  })();
  db.close();
  return performance.now() - t0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

async function main() {
  const { Quarantine } = await import('../dist/src/quarantine/quarantine.js');
  const { quarantineConfigSchema } = await import('../dist/src/quarantine/config.js');
  const { silentLogger } = await import('../dist/src/log.js');
  const ROWS = Number(process.env.QBENCH_ROWS ?? 100_000);
  const RUNS = Number(process.env.QBENCH_RUNS ?? 200);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-qbench-'));
  try {
    const open = () => Quarantine.open({ dataDir: dir, config: quarantineConfigSchema.parse({}), logger: silentLogger(), fsync: false, expireIntervalMs: 0 });
    open().close();
    const fillMs = fillQuarantineIndex(dir, ROWS);
    const q = open();
    const deep = q.list({ limit: 50 });
    const forms = {
      'list newest': {},
      'list page 2': { before: deep.next },
      'user view': { recipient: 'user42@example.test' },
      'by reason': { reason: 'virus' },
      'by state': { state: 'released' },
      'search rare': { search: 'needle' },
      'search common': { search: 'invoice' },
      'search sender': { search: 'sender4711@' },
      'user search': { recipient: 'user7@example.test', search: 'needle' },
    };
    const results = {};
    for (const [name, form] of Object.entries(forms)) {
      const ms = [];
      for (let k = 0; k < RUNS; k++) {
        const s = process.hrtime.bigint();
        q.list({ ...form, limit: 50 });
        ms.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
      ms.sort((a, b) => a - b);
      const pick = (p) => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] * 100) / 100;
      results[name] = { p50: pick(0.5), p99: pick(0.99), max: Math.round(ms[ms.length - 1] * 100) / 100 };
    }
    q.close();
    if (process.argv.includes('--json')) console.log(JSON.stringify({ rows: ROWS, runs: RUNS, fill_ms: Math.round(fillMs), results }, null, 2));
    else {
      console.log(`quarantine: ${ROWS} entries (filled in ${Math.round(fillMs)} ms), ${RUNS} runs per form, 50 per page`);
      for (const [name, r] of Object.entries(results)) console.log(`  ${name.padEnd(14)} p50 ${String(r.p50).padStart(7)} ms   p99 ${String(r.p99).padStart(7)} ms   max ${String(r.max).padStart(7)} ms`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
