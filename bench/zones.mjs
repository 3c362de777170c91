#!/usr/bin/env node
// Local DNSBL mirrors at scale: generates a 1,000,000-entry ip4tset zone and a 1,000,000-entry
// ip4set zone (single addresses, CIDRs of several sizes, ranges, exclusions) in a temporary
// directory, loads each through ZoneMirror (read, parse, build, as on a reload), and measures
// lookups through answer() on query names, listed and unlisted.
// Runs the compiled code: `npm run build` first. Prints one JSON object on stdout:
//   {zone_load_ms_ip4tset, zone_load_ms_ip4set, rss_mb, lookups_per_s, lookup_us_p50, lookup_us_p99, entries}
// Options: --entries N (default 1000000), --lookups N (default 1000000), --keep (keep the files).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --cli PATH/dist/src/cli/main.js (as bench/run.sh passes it): measure that build's code.
const cliArg = process.argv.indexOf('--cli');
const distDir = cliArg >= 0 ? path.resolve(process.argv[cliArg + 1], '../../..') : path.join(root, 'dist');
const mirrorJs = path.join(distDir, 'src/dns/zones/zone-mirror.js');
if (!fs.existsSync(mirrorJs)) {
  console.error(`bench/zones.mjs: ${mirrorJs} is missing: run npm run build first`);
  process.exit(1);
}
const { ZoneMirror } = await import(pathToFileURL(mirrorJs).href);

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ENTRIES = opt('entries', 1_000_000);
const LOOKUPS = opt('lookups', 1_000_000);
const KEEP = args.includes('--keep');

// A collectable heap makes the RSS figure the zones' and not the garbage's.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

// Deterministic data: the same files every run.
let seed = 42;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const u32 = () => Math.floor(rand() * 4294967296);
const dotted = (a) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const reversed = (a) => `${a & 255}.${(a >>> 8) & 255}.${(a >>> 16) & 255}.${a >>> 24}`;

function writeLines(file, count, line) {
  const fd = fs.openSync(file, 'w');
  let chunk = [];
  for (let i = 0; i < count; i++) {
    chunk.push(line(i));
    if (chunk.length === 50_000) {
      fs.writeSync(fd, chunk.join('\n') + '\n');
      chunk = [];
    }
  }
  if (chunk.length) fs.writeSync(fd, chunk.join('\n') + '\n');
  fs.closeSync(fd);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-zones-bench-'));
try {
  // ip4tset: single addresses, the shape of the big single-IP lists.
  const tsetFile = path.join(dir, 'ip4tset.zone');
  const tsetSample = [];
  writeLines(tsetFile, ENTRIES, (i) => {
    const a = u32();
    if (i % 97 === 0) tsetSample.push(a);
    return i === 0 ? `:127.0.0.2:Listed, see https://bl.example.test/?$\n${dotted(a)}` : dotted(a);
  });

  // ip4set: mostly single addresses and /24s, some /28s, /30s, /16s, ranges, exclusions.
  const setFile = path.join(dir, 'ip4set.zone');
  const setSample = [];
  writeLines(setFile, ENTRIES, (i) => {
    const r = rand();
    let a = u32();
    let line;
    if (r < 0.6) line = dotted(a);
    else if (r < 0.8) line = `${dotted((a &= 0xffffff00) >>> 0)}/24`;
    else if (r < 0.9) line = `${dotted((a = (a & 0xfffffff0) >>> 0))}/28 :127.0.0.3:Range $`;
    else if (r < 0.968) line = `${dotted((a = (a & 0xfffffffc) >>> 0))}/30`;
    else if (r < 0.97) line = `${dotted((a = (a & 0xffff0000) >>> 0))}/16 :127.0.0.4`;
    else if (r < 0.98) line = `${dotted(a)}-${(a & 255) < 250 ? (a & 255) + 5 : a & 255}`;
    else line = `!${dotted(a)}`;
    if (i % 97 === 0 && !line.startsWith('!')) setSample.push(a >>> 0);
    return i === 0 ? `:127.0.0.2:Listed $\n${line}` : line;
  });

  const sizes = { ip4tset: fs.statSync(tsetFile).size, ip4set: fs.statSync(setFile).size };
  gc();
  const rssBefore = process.memoryUsage().rss;

  async function load(name, type, file) {
    const m = new ZoneMirror({ name, type, file, ttl: 2_100_000, watch: false });
    const started = performance.now();
    if (!(await m.load())) throw new Error(`${file}: ${m.stats().lastError}`);
    return { mirror: m, ms: performance.now() - started };
  }
  const tset = await load('tset.bench.test', 'ip4tset', tsetFile);
  const set = await load('set.bench.test', 'ip4set', setFile);
  gc();
  const rssAfter = process.memoryUsage().rss;

  // Query names: half listed (sampled from the files), half random (almost all unlisted).
  const names = [];
  for (let i = 0; i < 20_000; i++) {
    const useSet = i % 2 === 0;
    const sample = useSet ? setSample : tsetSample;
    const listed = rand() < 0.5;
    const a = listed ? sample[Math.floor(rand() * sample.length)] : u32();
    names.push(`${reversed(a)}.${useSet ? 'set' : 'tset'}.bench.test`);
  }
  const mirrors = [set.mirror, tset.mirror];
  let listedAnswers = 0;
  // Warm-up (JIT), then the throughput run over the whole name list, round and round.
  for (let i = 0; i < 100_000; i++) mirrors[i & 1].answer(names[i % names.length], 'A');
  const t0 = performance.now();
  for (let i = 0; i < LOOKUPS; i++) {
    const r = mirrors[i & 1].answer(names[i % names.length], 'A');
    if (r.status === 'ok') listedAnswers++;
  }
  const elapsed = performance.now() - t0;

  // Latency of single calls (A and TXT), timed one by one.
  const lat = [];
  for (let i = 0; i < 50_000; i++) {
    const name = names[i % names.length];
    const m = mirrors[i & 1];
    const type = i % 4 < 2 ? 'A' : 'TXT';
    const s = performance.now();
    m.answer(name, type);
    lat.push(performance.now() - s);
  }
  lat.sort((x, y) => x - y);
  const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] * 1000;

  const st = set.mirror.stats();
  const tt = tset.mirror.stats();
  if (st.entries !== ENTRIES || tt.entries !== ENTRIES) throw new Error(`entries loaded: ip4set ${st.entries}, ip4tset ${tt.entries}, want ${ENTRIES}`);
  if (listedAnswers < LOOKUPS * 0.2) throw new Error(`only ${listedAnswers} of ${LOOKUPS} lookups were listed: the sample is wrong`);
  set.mirror.close();
  tset.mirror.close();
  process.stderr.write(
    `bench/zones.mjs: files ${(sizes.ip4tset / 1e6).toFixed(1)} MB + ${(sizes.ip4set / 1e6).toFixed(1)} MB; ` +
      `${listedAnswers} of ${LOOKUPS} lookups listed; ${Math.round(elapsed)} ms for the lookups\n`,
  );
  console.log(
    JSON.stringify({
      zone_load_ms_ip4tset: Math.round(tset.ms),
      zone_load_ms_ip4set: Math.round(set.ms),
      rss_mb: Math.round(((rssAfter - rssBefore) / 1048576) * 10) / 10,
      lookups_per_s: Math.round(LOOKUPS / (elapsed / 1000)),
      lookup_us_p50: Math.round(pct(50) * 100) / 100,
      lookup_us_p99: Math.round(pct(99) * 100) / 100,
      entries: ENTRIES,
    }),
  );
} finally {
  if (!KEEP) fs.rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`bench/zones.mjs: files kept in ${dir}\n`);
}
