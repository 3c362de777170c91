#!/usr/bin/env node
// Spam scanning speed, Portcullis next to SpamAssassin and rspamd, on the same messages in the
// same run: the message set of ../shared/peers/README.md (every 5th spam and every 7th ham of the
// dev corpus, mbox "From " line stripped; its 8 generated malware samples are left out, no engine
// here runs an antivirus). Rows:
//   portcullis            the scan command's code (dist/src/cli/scan.js) in this process, one
//                         message after another, shipped rules and scores
//   portcullis-sa-rules   the same with the Debian SpamAssassin ruleset loaded as well
//                         (rules.paths); skipped with the reason when the rules do not load
//   portcullis-spamd      `portcullis serve` with only a `kind: spamd` listener, through the same
//                         spamc as spamd's row, 8 in flight (the spamd endpoint against spamd itself)
//   spamd                 spamd (8 children) through the native client spamc, 8 in flight
//   rspamd                rspamd (2 workers) through HTTP /checkv2, 8 in flight
// Every engine's Bayes is trained on the same messages before it is measured (--bayes trained,
// the default: up to --train-per-class spam and as many ham of the corpus that are NOT in the
// scanned set; portcullis train, sa-learn, rspamd's /learnspam and /learnham), so that the rows
// measure a classifier that judges; --bayes untrained gives every engine a fresh, empty
// database instead. Network tests are off everywhere (as in bench/spam-eval.mjs).
// CPU per message: the daemon's process tree from /proc (for rspamd, plus its Redis), the
// client's own; for Portcullis, process.cpuUsage of this process (all its threads).
// Prints one JSON line (bench/run.sh stores it as .bench/results/components/spam.json and
// bench/report.mjs renders it in docs/benchmarks.md).
//
//   node bench/spam-speed.mjs [--cli dist/src/cli/main.js] [--corpus TARBALL|DIR] [--inflight 8]
//                             [--rows portcullis,portcullis-sa-rules,spamd,rspamd] [--out FILE]
//                             [--bayes trained|untrained] [--train-per-class 400] [--warmup all|N]
//                             [--profile DIR]   (a .cpuprofile of each Portcullis row's measured pass)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import {
  say, ensurePeers, versionOf, loadCorpus, stripFromLine, mapPool, startNxDns, writeSaSite, saLearn, startSpamd, spamcCheck,
  startRedis, startRspamd, rspamdCheck, rspamdLearn,
} from './spam-peers.mjs';
import { treeTicks, ticksToMs, CLK_TCK, freePort, startProcess, stopProcess, waitPort } from './procs.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    cli: { type: 'string', default: path.join(root, 'dist/src/cli/main.js') },
    corpus: { type: 'string', default: path.join(root, '../shared/corpus/sa2002-dev.tar.gz') },
    inflight: { type: 'string', default: '8' },
    'spamd-children': { type: 'string', default: '8' },
    'rspamd-workers': { type: 'string', default: '2' },
    // A gateway runs for days: rows are measured in steady state, after one pass over the set
    // (the same warm-up for every engine; JIT compilation of the JavaScript engines is done by then).
    warmup: { type: 'string', default: 'all' },
    bayes: { type: 'string', default: 'trained' },
    'train-per-class': { type: 'string', default: '400' },
    rows: { type: 'string', default: 'portcullis,portcullis-sa-rules,portcullis-spamd,spamd,rspamd' },
    'sa-rules': { type: 'string', default: '/usr/share/spamassassin' },
    out: { type: 'string' },
    // Writes a CPU profile (main thread) of each Portcullis row's measured pass to this directory.
    profile: { type: 'string' },
  },
});
const INFLIGHT = Number(opt.inflight);
const WARMUP = Number(opt.warmup);
const ROWS = opt.rows.split(',').map((s) => s.trim());
const distDir = path.resolve(opt.cli, '../../..');
const started = Date.now();
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const LOAD_START = loadavg();

// ---- the message set
const corpus = loadCorpus(opt.corpus);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-spam-speed-'));
fs.chmodSync(work, 0o755);
process.on('exit', () => { corpus.cleanup(); fs.rmSync(work, { recursive: true, force: true }); });
const set = [];
for (const [label, step] of [['spam', 5], ['ham', 7]]) {
  const list = corpus.messages.filter((m) => m.label === label);
  for (let i = step - 1; i < list.length; i += step) {
    const m = list[i];
    const raw = stripFromLine(fs.readFileSync(m.file));
    const file = path.join(work, 'set', `${label}-${path.basename(m.name)}`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, raw);
    set.push({ name: m.name, label, raw, file });
  }
}
if (!set.length) throw new Error(`corpus ${opt.corpus}: no messages`);
const N = set.length;
// ---- the training set: messages of the corpus outside the scanned set, the same for every engine
const TRAINED = opt.bayes !== 'untrained';
const inSet = new Set(set.map((m) => m.name));
const train = { spam: [], ham: [] };
if (TRAINED) {
  for (const label of ['spam', 'ham']) {
    const rest = corpus.messages.filter((m) => m.label === label && !inSet.has(m.name));
    const want = Math.min(rest.length, Number(opt['train-per-class']));
    // Spread over the corpus (every k-th), not its first files.
    for (let i = 0; i < want; i++) {
      const m = rest[Math.floor((i * rest.length) / want)];
      const raw = stripFromLine(fs.readFileSync(m.file));
      const file = path.join(work, 'train', label, path.basename(m.name));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, raw);
      train[label].push({ name: m.name, label, raw, file });
    }
  }
  spawnSync('chmod', ['-R', 'a+rX', path.join(work, 'train')]);
  say(`training set: ${train.spam.length} spam, ${train.ham.length} ham (not in the scanned set)`);
}
const BAYES_NOTE = TRAINED
  ? `trained for every engine on the same ${train.spam.length} spam and ${train.ham.length} ham of the corpus, none of them in the scanned set`
  : 'untrained (a fresh, empty database) for every engine';
const bytes = set.reduce((n, m) => n + m.raw.length, 0);
say(`speed: ${N} messages (${set.filter((m) => m.label === 'spam').length} spam, ${set.filter((m) => m.label === 'ham').length} ham), mean ${(bytes / N / 1024).toFixed(1)} KB`);
const warm = opt.warmup === 'all' ? set : set.slice(0, Math.min(WARMUP, N));

const selfChildTicks = () => {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]);
};
const cpuMs = (u) => (u.user + u.system) / 1000;
const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** Runs `one` over the set with `inflight` in flight; the daemon's CPU from /proc. */
async function measurePeer(one, inflight, pids) {
  await mapPool(warm, inflight, one);
  const d0 = pids.map((p) => treeTicks(p) ?? 0);
  const c0 = process.cpuUsage();
  const k0 = selfChildTicks();
  const t0 = performance.now();
  const res = await mapPool(set, inflight, async (m) => { try { return await one(m); } catch (e) { return { error: e.message }; } });
  const seconds = (performance.now() - t0) / 1000;
  const daemon = pids.map((p, i) => ticksToMs((treeTicks(p) ?? 0) - d0[i])).reduce((a, b) => a + b, 0);
  const client = cpuMs(process.cpuUsage(c0)) + ticksToMs(selfChildTicks() - k0);
  const errors = res.filter((r) => r.error);
  return {
    msgs_per_s: round(N / seconds, 1), seconds: round(seconds, 2),
    cpu_ms_per_msg: round(daemon / N), client_cpu_ms_per_msg: round(client / N),
    flagged_spam: res.filter((r) => r.spam).length, errors: errors.length,
    ...(errors.length ? { error_sample: errors[0].error.slice(0, 200) } : {}),
  };
}

const rows = [];
const row = (id, label, r) => { rows.push({ id, label, ...r }); say(`${id}: ${r.skipped ? `skipped: ${r.skipped}` : `${r.msgs_per_s} msg/s, ${r.cpu_ms_per_msg} ms CPU/msg`}`); };

// ---- Portcullis, in process: the scan command's own functions
/**
 * The scan command's entry point in dist/src/cli/scan.js: scanPaths(cfg, paths) → { results }
 * (the spam scan) or, in older builds, scanFiles(cfg, files) → results (malware checks only).
 */
async function scanFunction() {
  const mod = await import(path.join(distDir, 'src/cli/scan.js'));
  if (typeof mod.openScanner === 'function') return { open: mod.openScanner };
  if (typeof mod.scanPaths === 'function') return async (cfg, files) => (await mod.scanPaths(cfg, files)).results;
  if (typeof mod.scanFiles === 'function') return (cfg, files) => mod.scanFiles(cfg, files);
  throw new Error('dist/src/cli/scan.js exports neither scanPaths nor scanFiles');
}

/** Starts the V8 profiler on this thread; the function it gives stops it and writes the profile. */
async function startProfile() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async (file) => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(profile));
    return file;
  };
}

async function portcullisRow(id, label, extra) {
  let scan;
  let loadConfig;
  try {
    scan = await scanFunction();
    ({ loadConfig } = await import(path.join(distDir, 'src/config/load.js')));
  } catch (e) {
    return row(id, label, { skipped: `cannot load the scan code from ${distDir}: ${e.message}` });
  }
  const dir = path.join(work, id);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const file = path.join(dir, 'portcullis.yaml');
  fs.writeFileSync(file, YAML.stringify({
    hostname: 'mx.example.test', data_dir: path.join(dir, 'data'), domains: ['example.test'],
    metrics: { enabled: false }, log: { level: 'warn' }, dns: { servers: ['127.0.0.1:1'] }, ...extra,
  }));
  let cfg;
  try {
    cfg = loadConfig(file);
  } catch (e) {
    return row(id, label, { skipped: `configuration refused: ${String(e.message).replace(/\s*\n\s*/g, ' ').slice(0, 300)}` });
  }
  let trainSeconds;
  if (TRAINED) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [opt.cli, 'train', '--spam', path.join(work, 'train', 'spam'), '--ham', path.join(work, 'train', 'ham'), '--config', file],
      { encoding: 'utf8', timeout: 900_000 });
    if (r.status !== 0) return row(id, label, { skipped: `portcullis train failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-2).join(' ').slice(0, 300)}` });
    trainSeconds = round((performance.now() - t0) / 1000, 1);
  }
  const verdictIsSpam = (v) => v.spam === true || v.action === 'junk' || v.action === 'reject' || (v.action === undefined && v.verdict === 'reject');
  const timed = async (fn) => {
    const c0 = process.cpuUsage();
    const k0 = treeTicks(process.pid) ?? 0;
    const t0 = performance.now();
    const res = await fn();
    const ms = performance.now() - t0;
    // process.cpuUsage covers every thread of this process (worker threads included); the /proc
    // tree also catches child processes, should the scan code ever start one.
    const cpu = Math.max(cpuMs(process.cpuUsage(c0)), ticksToMs((treeTicks(process.pid) ?? 0) - k0));
    return { res, ms, cpu };
  };
  const result = (one, all, measured, seconds, cpu) => {
    if (all.res.length !== N) throw new Error(`${all.res.length} results for ${N} messages`);
    return row(id, label, {
      msgs_per_s: round(measured / seconds, 1), seconds: round(seconds, 2),
      cpu_ms_per_msg: round(Math.max(cpu, 0) / measured), client_cpu_ms_per_msg: 0,
      setup_ms: round(one.ms, 0), setup_cpu_ms: round(one.cpu, 0),
      msgs_per_s_with_setup: round(N / ((all.ms + (measured === N ? one.ms : 0)) / 1000), 1),
      flagged_spam: all.res.filter(verdictIsSpam).length, errors: 0,
      output_shape: all.res[0] && 'action' in all.res[0] ? 'action' : 'verdict',
      ...(trainSeconds !== undefined ? { train_seconds: trainSeconds } : {}),
    });
  };
  try {
    if (scan.open) {
      // One engine for the whole row, as a running gateway (and the peers' daemons) has: set up
      // once (rules compiled, Bayes opened: measured apart, as set-up), warmed by the warm-up pass
      // (JIT, Bayes' and the rules' caches), then the measured pass.
      let scanner;
      const one = await timed(async () => {
        scanner = await scan.open(cfg);
        return (await scanner.scan([set[0].file])).results;
      });
      try {
        await timed(() => scanner.scan(warm.map((m) => m.file)));
        const stop = opt.profile ? await startProfile() : undefined;
        const all = await timed(async () => (await scanner.scan(set.map((m) => m.file))).results);
        if (stop) say(`profile: ${await stop(path.join(opt.profile, `${id}.cpuprofile`))}`);
        return result(one, all, N, Math.max(all.ms, 1) / 1000, all.cpu);
      } finally {
        await scanner.close();
      }
    }
    // Older builds: each call sets the engine up before its first message; a call with one
    // message measures that set-up, and is taken off the measured call.
    const one = await timed(() => scan(cfg, [set[0].file]));
    await timed(() => scan(cfg, warm.map((m) => m.file)));
    const all = await timed(() => scan(cfg, set.map((m) => m.file)));
    return result(one, all, N - 1, Math.max(all.ms - one.ms, 1) / 1000, all.cpu - one.cpu);
  } catch (e) {
    return row(id, label, { skipped: `scan failed: ${String(e.message).replace(/\s*\n\s*/g, ' ').slice(0, 300)}` });
  }
}

if (ROWS.includes('portcullis')) await portcullisRow('portcullis', 'Portcullis, shipped rules (in process: the scan command, 4 messages in flight)', {});
if (ROWS.includes('portcullis-sa-rules')) {
  const shipped = [path.join(distDir, 'conf', 'rules'), path.join(root, 'conf', 'rules')].find((d) => fs.existsSync(d));
  await portcullisRow('portcullis-sa-rules', `Portcullis + SpamAssassin's ruleset (${opt['sa-rules']}), in process`,
    { rules: { paths: [opt['sa-rules'], ...(shipped ? [shipped] : [])] } });
}

// ---- Portcullis as a daemon: the spamd listener (docs/integrations.md), through spamc like spamd
if (ROWS.includes('portcullis-spamd')) {
  const id = 'portcullis-spamd';
  const label = `Portcullis \`kind: spamd\` listener (portcullis serve) via spamc, ${INFLIGHT} in flight`;
  const hasSpamc = spawnSync('sh', ['-c', 'command -v spamc'], { encoding: 'utf8' }).status === 0;
  if (!hasSpamc) row(id, label, { skipped: 'spamc is not installed (Debian package spamc)' });
  else {
    const dir = path.join(work, id);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const port = await freePort();
    const file = path.join(dir, 'portcullis.yaml');
    fs.writeFileSync(file, YAML.stringify({
      hostname: 'mx.example.test', data_dir: path.join(dir, 'data'), domains: ['example.test'],
      metrics: { enabled: false }, console: { enabled: false }, log: { level: 'warn' }, dns: { servers: ['127.0.0.1:1'] },
      listeners: [{ name: 'spamd', kind: 'spamd', address: '127.0.0.1', port }],
    }));
    let proc;
    try {
      let trainSeconds;
      if (TRAINED) {
        const t0 = performance.now();
        const r = spawnSync(process.execPath, [opt.cli, 'train', '--spam', path.join(work, 'train', 'spam'), '--ham', path.join(work, 'train', 'ham'), '--config', file],
          { encoding: 'utf8', timeout: 900_000 });
        if (r.status !== 0) throw new Error(`portcullis train failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-2).join(' ').slice(0, 300)}`);
        trainSeconds = round((performance.now() - t0) / 1000, 1);
      }
      proc = startProcess(process.execPath, [opt.cli, 'serve', '--config', file], { log: path.join(work, `${id}.log`) });
      await waitPort(port, { proc, timeoutMs: 120_000 });
      row(id, label, { ...await measurePeer((m) => spamcCheck(port, m.raw), INFLIGHT, [proc.pid]), ...(trainSeconds !== undefined ? { train_seconds: trainSeconds } : {}) });
    } catch (e) {
      row(id, label, { skipped: `failed: ${e.message.split('\n')[0]}` });
    } finally {
      await stopProcess(proc);
    }
  }
}

// ---- the peers
const peers = ROWS.filter((r) => r === 'spamd' || r === 'rspamd');
const missing = peers.length ? ensurePeers(peers.map((r) => (r === 'spamd' ? 'spamassassin' : 'rspamd'))) : [];
const versions = {};

if (ROWS.includes('spamd')) {
  const lacking = missing.filter((m) => /spam/.test(m));
  if (lacking.length) row('spamd', 'spamd via spamc', { skipped: `not installed: ${lacking.join(', ')}` });
  else {
    versions.spamassassin = versionOf('spamassassin', ['-V'], /version ([\d.]+)/);
    const dir = path.join(work, 'sa');
    const site = writeSaSite(path.join(dir, 'site'), { bayesPath: path.join(dir, 'bayes', 'bayes') });
    fs.mkdirSync(path.join(dir, 'bayes'), { recursive: true, mode: 0o777 });
    fs.chmodSync(path.join(dir, 'bayes'), 0o777);
    fs.chmodSync(dir, 0o755);
    let spamd;
    try {
      let trainSeconds;
      if (TRAINED) {
        const t0 = performance.now();
        await saLearn(site, { spamDir: path.join(work, 'train', 'spam'), hamDir: path.join(work, 'train', 'ham') });
        // spamd runs as nobody: its Bayes files must be readable (and the journal writable) by it.
        spawnSync('chmod', ['-R', 'a+rwX', path.join(dir, 'bayes')]);
        trainSeconds = round((performance.now() - t0) / 1000, 1);
      }
      spamd = await startSpamd({ siteDir: site, dir: path.join(dir, 'home'), children: Number(opt['spamd-children']), log: path.join(work, 'spamd.log') });
      row('spamd', `spamd ${versions.spamassassin} (${opt['spamd-children']} children) via spamc, ${INFLIGHT} in flight`,
        { ...await measurePeer((m) => spamcCheck(spamd.port, m.raw), INFLIGHT, [spamd.pid]), ...(trainSeconds !== undefined ? { train_seconds: trainSeconds } : {}) });
    } catch (e) {
      row('spamd', 'spamd via spamc', { skipped: `failed: ${e.message.split('\n')[0]}` });
    } finally {
      await spamd?.stop();
    }
  }
}

if (ROWS.includes('rspamd')) {
  const lacking = missing.filter((m) => /rspamd|redis/.test(m));
  if (lacking.length) row('rspamd', 'rspamd via HTTP', { skipped: `not installed: ${lacking.join(', ')}` });
  else {
    versions.rspamd = versionOf('rspamd', ['--version'], /version ([\d.]+)/);
    const dir = path.join(work, 'rspamd');
    const dns = await startNxDns();
    let redis;
    let rs;
    try {
      redis = await startRedis({ dir: path.join(dir, 'redis'), log: path.join(work, 'redis.log') });
      rs = await startRspamd({ dir: path.join(dir, 'rspamd'), redisPort: redis.port, dnsPort: dns.port, workers: Number(opt['rspamd-workers']),
        log: path.join(work, 'rspamd.log'), hsCacheDir: path.join(os.tmpdir(), 'portcullis-bench-rspamd-hs') });
      let trainSeconds;
      if (TRAINED) {
        const t0 = performance.now();
        const learned = await mapPool([...train.spam, ...train.ham], INFLIGHT, (m) => rspamdLearn(rs, m.raw, m.label).catch((e) => ({ ok: false, error: e.message })));
        const bad = learned.filter((l) => !l.ok);
        if (bad.length > learned.length / 10) throw new Error(`rspamd learned ${learned.length - bad.length} of ${learned.length}: ${bad[0].error}`);
        trainSeconds = round((performance.now() - t0) / 1000, 1);
      }
      row('rspamd', `rspamd ${versions.rspamd} (${opt['rspamd-workers']} workers, Redis) via HTTP /checkv2, ${INFLIGHT} in flight`,
        { ...await measurePeer(async (m) => {
          const r = await rspamdCheck(rs, m.raw);
          return { spam: ['reject', 'add header', 'rewrite subject'].includes(r.action) };
        }, INFLIGHT, [rs.pid, redis.pid]), ...(trainSeconds !== undefined ? { train_seconds: trainSeconds } : {}) });
    } catch (e) {
      row('rspamd', 'rspamd via HTTP', { skipped: `failed: ${e.message.split('\n')[0]}` });
    } finally {
      await rs?.stop();
      await redis?.stop();
      await dns.close();
    }
  }
}

// ---- ratios: Portcullis against each peer
const by = Object.fromEntries(rows.filter((r) => !r.skipped).map((r) => [r.id, r]));
const ratios = [];
for (const p of ['portcullis', 'portcullis-sa-rules', 'portcullis-spamd']) {
  for (const q of ['spamd', 'rspamd']) {
    if (!by[p] || !by[q] || (p === 'portcullis-spamd' && q !== 'spamd')) continue;
    ratios.push({ portcullis: p, peer: q, msgs_per_s: round(by[p].msgs_per_s / by[q].msgs_per_s), cpu_per_msg: round(by[p].cpu_ms_per_msg / by[q].cpu_ms_per_msg) });
  }
}

const result = {
  bench: 'spam',
  messages: N, spam: set.filter((m) => m.label === 'spam').length, ham: set.filter((m) => m.label === 'ham').length,
  mean_kb: round(bytes / N / 1024, 1),
  set: `${path.basename(opt.corpus)}: every 5th spam, every 7th ham, mbox "From " line stripped`,
  bayes: BAYES_NOTE,
  rows, ratios, versions,
  cpus: os.cpus().length, loadavg_start: LOAD_START, loadavg_end: loadavg(), clk_tck: CLK_TCK, node: process.version, wall_seconds: Math.round((Date.now() - started) / 1000),
};
const line = JSON.stringify(result);
if (opt.out) { fs.mkdirSync(path.dirname(path.resolve(opt.out)), { recursive: true }); fs.writeFileSync(opt.out, line + '\n'); }
console.log(line);
