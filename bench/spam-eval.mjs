#!/usr/bin/env node
// Spam accuracy of Portcullis, SpamAssassin and rspamd by k-fold cross-validation on a labelled
// corpus (issue #5). For each fold: every engine starts from fresh state, its Bayes is trained on
// the other folds, the held-out fold is scanned, and each message's score and decision are kept.
//
//   node bench/spam-eval.mjs [--corpus PATH] [--folds 5] [--engines portcullis,spamassassin,rspamd]
//                            [--out FILE.json] [--write-docs] [--cli dist/src/cli/main.js]
//                            [--group-by auto|source|none] [--mask auto|none|verdicts|modern]
//                            [--merge EARLIER.json]  (carry over engines measured earlier, same corpus and folds)
//   node bench/spam-eval.mjs --render-only RESULTS.json [MORE.json]  (rewrite docs/spam-accuracy.md from results files)
//
// Portcullis alone on the modern dev set, source-grouped folds, artefacts masked:
//   node bench/spam-eval.mjs --corpus ../shared/corpus/modern-dev.tar.gz --engines portcullis
// (results in .bench/results/spam-accuracy-modern.json; add --write-docs to rewrite the page with
// the 2002 results file beside it, and --merge an earlier file to carry the peers over).
//
// --group-by source (the default when index.tsv names more sources than folds): every message of
// one source_repo (one list archive, one collection; foff-positive and -negative are one) lands in
// the same fold, so no source is in training and test at once. --mask (bench/corpus-mask.mjs):
// 'modern' (default for a corpus with sources) strips upstream verdicts, list headers, the archive
// hop, the list's subject tag and footer, In-Reply-To/References/Cc, reply prefixes, and CRLF;
// 'verdicts' (default otherwise) strips upstream verdict headers only.
//
// PATH is a tarball or a directory with spam/ and ham/ (any file names; index.tsv, if present,
// gives the subset column used to split ham into easy/hard). The mbox "From " line is stripped
// before any engine sees a message. Folds: the files of each class sorted by name, the i-th one
// in fold i mod k (stratified and deterministic). Engines run one after another, never at once,
// so each has the two cores to itself. See docs/spam-accuracy.md for the method and results.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { maskMessage } from './corpus-mask.mjs';
import {
  say, ensurePeers, versionOf, loadCorpus, stripFromLine, mapPool, startNxDns, writeSaSite, saLearn,
  startSpamd, spamdCheck, startRedis, startRspamd, rspamdCheck, rspamdLearn, rspamdStat, RSPAMD_DISABLED,
} from './spam-peers.mjs';

const ENGINE_ORDER = ['portcullis', 'spamassassin', 'rspamd'];
const ENGINE_NAMES = { portcullis: 'Portcullis', spamassassin: 'SpamAssassin', rspamd: 'rspamd' };
const esc = (s) => String(s).replace(/\|/g, '\\|');
const pct = (x, d = 1) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(d)}%`);
const num = (x, d = 3) => (x === null || x === undefined ? '—' : x.toFixed(d));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    corpus: { type: 'string', default: path.join(root, '../shared/corpus/sa2002-dev.tar.gz') },
    folds: { type: 'string', default: '5' },
    engines: { type: 'string', default: 'portcullis,spamassassin,rspamd' },
    out: { type: 'string' },
    'group-by': { type: 'string', default: 'auto' },
    mask: { type: 'string', default: 'auto' },
    'write-docs': { type: 'boolean', default: false },
    docs: { type: 'string', default: path.join(root, 'docs/spam-accuracy.md') },
    cli: { type: 'string', default: path.join(root, 'dist/src/cli/main.js') },
    // A Portcullis configuration to start from (data_dir is replaced per fold).
    'portcullis-config': { type: 'string' },
    inflight: { type: 'string', default: '6' },
    'spamd-children': { type: 'string', default: '4' },
    'rspamd-workers': { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    merge: { type: 'string', multiple: true },
    'render-only': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
if (opt['render-only']) {
  // Re-render docs/spam-accuracy.md from an earlier results file, running nothing.
  const files = [opt['render-only'], ...positionals];
  fs.writeFileSync(opt.docs, renderDocs(files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')))));
  process.stderr.write(`wrote ${path.relative(root, opt.docs)} from ${files.join(', ')}\n`);
  process.exit(0);
}
const K = Number(opt.folds);
if (!Number.isInteger(K) || K < 2 || K > 20) throw new Error(`--folds ${opt.folds}: want an integer from 2 to 20`);
const ENGINES = opt.engines.split(',').map((s) => s.trim()).filter(Boolean);
for (const e of ENGINES) if (!['portcullis', 'spamassassin', 'rspamd'].includes(e)) throw new Error(`--engines: unknown engine "${e}" (portcullis, spamassassin, rspamd)`);
const INFLIGHT = Number(opt.inflight);
const started = Date.now();
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const LOADAVG_START = loadavg();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;

// ---------------------------------------------------------------------------------------------
// Corpus and folds

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-spam-eval-'));
// spamd scans as nobody, rspamd as _rspamd: they must reach their folders under this one.
fs.chmodSync(work, 0o755);
const corpus = loadCorpus(opt.corpus);
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  corpus.cleanup();
  if (!opt.keep) fs.rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);

// Sources: one source_repo is one group (foff-positive and foff-negative share theirs).
const groupOf = (m) => m.source ?? m.subset;
const sourceName = (m) => (m.source ? m.subset.replace(/-(positive|negative)$/, '') : m.subset);
const distinctSources = new Set(corpus.messages.filter((m) => m.source).map(groupOf));
const GROUPED = opt['group-by'] === 'source' || (opt['group-by'] === 'auto' && distinctSources.size >= K);
if (!['auto', 'source', 'none'].includes(opt['group-by'])) throw new Error(`--group-by ${opt['group-by']}: want auto, source or none`);
if (opt['group-by'] === 'source' && distinctSources.size < K) throw new Error(`--group-by source: the corpus names ${distinctSources.size} sources (index.tsv source_repo), fewer than ${K} folds`);
const MASK = opt.mask === 'auto' ? (distinctSources.size > 1 ? 'modern' : 'verdicts') : opt.mask;
if (!['none', 'verdicts', 'modern'].includes(MASK)) throw new Error(`--mask ${opt.mask}: want auto, none, verdicts or modern`);
const corpusKey = path.basename(opt.corpus).replace(/\.(tar\.gz|tgz|tar)$/, '').replace(/-dev$/, '');
opt.out ??= path.join(root, `.bench/results/spam-accuracy-${corpusKey}.json`);

const messages = [];
const foldOfGroup = new Map();
if (GROUPED) {
  // Whole sources to folds, largest first, each to the fold with the fewest messages so far
  // (ties: the lower fold): deterministic, and the folds come out of similar size.
  const sizes = new Map();
  for (const m of corpus.messages) sizes.set(groupOf(m), (sizes.get(groupOf(m)) ?? 0) + 1);
  const load = new Array(K).fill(0);
  for (const [g, n] of [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    const k = load.indexOf(Math.min(...load));
    foldOfGroup.set(g, k);
    load[k] += n;
  }
}
for (const label of ['spam', 'ham']) {
  const ofLabel = corpus.messages.filter((m) => m.label === label);
  ofLabel.forEach((m, i) => messages.push({ ...m, group: sourceName(m), fold: GROUPED ? foldOfGroup.get(groupOf(m)) : i % K }));
}
// The stripped copies, one folder per fold and class, and the training folders (hard links to
// the other folds' copies) that sa-learn and `portcullis train` read.
const taken = new Set();
for (const m of messages) {
  m.raw = maskMessage(stripFromLine(fs.readFileSync(m.file)), MASK);
  // Nested names are flattened; a clash (a/b and a__b) gets a numbered name.
  let flat = m.name.slice(m.label.length + 1).replace(/\//g, '__');
  for (let n = 2; taken.has(`${m.label}/${flat}`); n++) flat = `${n}-${flat}`;
  taken.add(`${m.label}/${flat}`);
  m.path = path.join(work, 'folds', `f${m.fold}`, m.label, flat);
  fs.mkdirSync(path.dirname(m.path), { recursive: true });
  fs.writeFileSync(m.path, m.raw);
}
fs.chmodSync(path.join(work, 'folds'), 0o755);
function trainDirs(k) {
  const dir = path.join(work, 'train', `f${k}`);
  if (!fs.existsSync(dir)) {
    for (const label of ['spam', 'ham']) fs.mkdirSync(path.join(dir, label), { recursive: true });
    for (const m of messages) if (m.fold !== k) fs.linkSync(m.path, path.join(dir, m.label, `f${m.fold}-${path.basename(m.path)}`));
    spawnSync('chmod', ['-R', 'a+rX', path.join(work, 'train'), path.join(work, 'folds')]);
  }
  return { spamDir: path.join(dir, 'spam'), hamDir: path.join(dir, 'ham') };
}
const count = (f) => messages.filter(f).length;
const subsets = [...new Set(messages.map((m) => m.subset))];
say(`corpus ${opt.corpus}: ${count((m) => m.label === 'spam')} spam, ${count((m) => m.label === 'ham')} ham` +
  `${corpus.hasSubsets ? ` (subsets: ${subsets.map((s) => `${s} ${count((m) => m.subset === s)}`).join(', ')})` : ''}; ${K} folds` +
  `${GROUPED ? ` grouped by source (${[...Array(K).keys()].map((k) => `fold ${k + 1}: ${[...new Set(messages.filter((m) => m.fold === k).map((m) => m.group))].join('+')}`).join('; ')})` : ''}; ` +
  `mask ${MASK}; work dir ${work}`);

// ---------------------------------------------------------------------------------------------
// Engines. Each returns, per fold, a result for every held-out message:
// { score, action, spam, symbols, error? } — `spam` is the engine's own default decision.

const RSPAMD_SPAM_ACTIONS = ['reject', 'add header', 'rewrite subject'];

const RULES = {
  spamassassin: [
    { id: 'default', label: 'score ≥ required_score 5.0 (spamd\'s "Spam: True")', test: (r) => r.spam },
  ],
  rspamd: [
    { id: 'default', label: 'action "add header", "rewrite subject" or "reject" (stock thresholds: score ≥ 6)', test: (r) => RSPAMD_SPAM_ACTIONS.includes(r.action) },
    { id: 'reject', label: 'action "reject" only (score ≥ 15)', test: (r) => r.action === 'reject' },
    { id: 'greylist', label: 'action "greylist" or above (score ≥ 4)', test: (r) => [...RSPAMD_SPAM_ACTIONS, 'greylist', 'soft reject'].includes(r.action) },
  ],
  portcullis: [
    // Like SpamAssassin's "Spam: True" and rspamd's "add header": the score at which the gateway
    // marks a message as spam (X-Spam-Flag: YES, policy.thresholds.tag, 5).
    { id: 'default', label: 'action tag, junk or reject (X-Spam-Flag: YES, score ≥ 5)', test: (r) => ['tag', 'junk', 'reject'].includes(r.action) },
    { id: 'junk', label: 'action junk or reject (delivered to Junk or refused, score ≥ 6)', test: (r) => r.action === 'junk' || r.action === 'reject' },
    { id: 'reject', label: 'action reject only (score ≥ 15)', test: (r) => r.action === 'reject' },
  ],
};

/** Runs a command to completion and resolves { code, stdout, stderr } whatever the exit status. */
function capture(cmd, args, { timeoutMs = 1_800_000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => { err += c; if (err.length > 200_000) err = err.slice(-100_000); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, stdout: '', stderr: e.message }); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err }); });
  });
}

const spamassassin = {
  name: 'spamassassin',
  version: () => `SpamAssassin ${versionOf('spamassassin', ['-V'], /version ([\d.]+)/) ?? '?'} (spamd, Debian package)`,
  settings: () => `spamd -L (local tests only) with dns_available no, skip_rbl_checks 1, use_razor2/use_pyzor/use_dcc 0; ` +
    `stock rules from /usr/share/spamassassin (no sa-update); Bayes on (use_bayes 1, bayes_auto_learn 0, a fresh bayes_path per fold trained with sa-learn --spam/--ham); ` +
    `AWL/TxRep off; ${opt['spamd-children']} spamd children, ${INFLIGHT} messages in flight over the spamd protocol (SYMBOLS, as \`spamc -y\`).`,
  async prepare() {
    // sa-learn is single-threaded and the slowest step: train every fold's database two at a
    // time (one per core) before scanning. Each fold has its own bayes_path, so nothing is shared.
    this.site = [];
    const t0 = Date.now();
    this.learned = await mapPool([...Array(K).keys()], 2, async (k) => {
      const dir = path.join(work, 'sa', `f${k}`);
      const site = writeSaSite(path.join(dir, 'site'), { bayesPath: path.join(dir, 'bayes', 'bayes') });
      fs.mkdirSync(path.join(dir, 'bayes'), { recursive: true });
      this.site[k] = site;
      const n = await saLearn(site, trainDirs(k));
      spawnSync('chmod', ['-R', 'a+rwX', dir]);
      say(`spamassassin fold ${k + 1}/${K}: sa-learn ${n.spam} spam, ${n.ham} ham (${elapsed()})`);
      return n;
    });
    this.trainSeconds = (Date.now() - t0) / 1000;
  },
  async fold(k, test) {
    const dir = path.join(work, 'sa', `f${k}`);
    const spamd = await startSpamd({ siteDir: this.site[k], dir: path.join(dir, 'home'), children: Number(opt['spamd-children']), log: path.join(work, `spamd-f${k}.log`) });
    try {
      return await mapPool(test, INFLIGHT, async (m) => {
        try {
          const r = await spamdCheck(spamd.port, m.raw);
          return { score: r.score, action: r.spam ? 'spam' : 'ham', spam: r.spam, symbols: r.symbols };
        } catch (e) {
          return { error: e.message };
        }
      });
    } finally {
      await spamd.stop();
    }
  },
  trainInfo(k) { return this.learned?.[k]; },
};

const rspamd = {
  name: 'rspamd',
  version: () => `rspamd ${versionOf('rspamd', ['--version'], /version ([\d.]+)/) ?? '?'}, Redis ${versionOf('redis-server', ['--version'], /v=([\d.]+)/) ?? '?'} (Debian packages)`,
  settings: () => `stock configuration (/etc/rspamd) with overrides: modules off: ${RSPAMD_DISABLED.join(', ')}; ` +
    `DNS answered NXDOMAIN at once by a local server; Bayes in a fresh Redis per fold (autolearn off), trained through the controller ` +
    `(/learnspam, /learnham, as \`rspamc learn_spam/learn_ham\`) with \`Learn-Type: bulk\`; ${opt['rspamd-workers']} normal workers; ` +
    `${INFLIGHT * 2} messages in flight on /checkv2.`,
  async prepare() {
    this.dns = await startNxDns();
    this.learned = [];
    this.trainSeconds = 0;
  },
  async fold(k, test, train) {
    const dir = path.join(work, 'rspamd', `f${k}`);
    const redis = await startRedis({ dir: path.join(dir, 'redis'), log: path.join(work, `redis-f${k}.log`) });
    let rs;
    try {
      rs = await startRspamd({ dir: path.join(dir, 'rspamd'), redisPort: redis.port, dnsPort: this.dns.port, workers: Number(opt['rspamd-workers']),
        log: path.join(work, `rspamd-f${k}.log`), hsCacheDir: path.join(work, 'rspamd-hs') });
      const t0 = Date.now();
      const learn = await mapPool(train, INFLIGHT * 2, (m) => rspamdLearn(rs, m.raw, m.label).catch((e) => ({ ok: false, error: e.message })));
      this.trainSeconds += (Date.now() - t0) / 1000;
      const failed = learn.filter((r) => !r.ok);
      const reasons = {};
      for (const f of failed) {
        const why = /already learned/.test(f.error) ? 'already learned (same message twice)' : f.error.replace(/<[^>]*>/g, '<…>').slice(0, 80);
        reasons[why] = (reasons[why] ?? 0) + 1;
      }
      this.learned[k] = {
        spam: train.filter((m, i) => m.label === 'spam' && learn[i].ok).length,
        ham: train.filter((m, i) => m.label === 'ham' && learn[i].ok).length,
        not_learned: reasons, redis_learns: await rspamdStat(rs),
      };
      say(`rspamd fold ${k + 1}/${K}: learned ${this.learned[k].spam} spam, ${this.learned[k].ham} ham` +
        `${failed.length ? `, ${failed.length} not learned (${Object.entries(reasons).map(([r, n]) => `${n}× ${r}`).join('; ')})` : ''} (${elapsed()})`);
      return await mapPool(test, INFLIGHT * 2, async (m) => {
        try {
          const r = await rspamdCheck(rs, m.raw);
          return { score: r.score, action: r.action, spam: RSPAMD_SPAM_ACTIONS.includes(r.action), symbols: r.symbols };
        } catch (e) {
          return { error: e.message };
        }
      });
    } finally {
      await rs?.stop();
      await redis.stop();
    }
  },
  async finish() { await this.dns?.close(); },
  trainInfo(k) { return this.learned?.[k]; },
};

/** Reads the JSON array `portcullis scan --json` prints, tolerating log lines around it. */
function parseScanJson(stdout) {
  try { return JSON.parse(stdout); } catch { /* look for the array */ }
  const start = stdout.search(/^\[/m);
  const end = stdout.lastIndexOf(']');
  if (start < 0 || end < start) throw new Error(`no JSON array in the output: ${stdout.slice(0, 200)}`);
  return JSON.parse(stdout.slice(start, end + 1));
}

/**
 * One scan result of the CLI → { score, action, spam, symbols }. Two shapes are accepted: the
 * spam scan's { action: deliver|tag|junk|reject, score, spam, symbols } and the older malware
 * scan's { verdict: accept|rewrite|reject|tempfail, score, symbols }.
 */
function portcullisResult(o) {
  const fromVerdict = { accept: 'deliver', rewrite: 'deliver', reject: 'reject', tempfail: 'tempfail' };
  const action = typeof o.action === 'string' ? o.action : fromVerdict[o.verdict] ?? String(o.verdict ?? 'unknown');
  const symbols = Array.isArray(o.symbols) ? o.symbols : [];
  const score = typeof o.score === 'number' ? o.score : symbols.reduce((n, s) => n + (Number(s.score) || 0), 0);
  return {
    score, action,
    spam: typeof o.spam === 'boolean' ? o.spam : action === 'junk' || action === 'reject',
    symbols: symbols.filter((s) => s && typeof s.name === 'string' && Number(s.score) !== 0).map((s) => `${s.name}(${Math.round(Number(s.score) * 100) / 100})`),
  };
}

const portcullis = {
  name: 'portcullis',
  version() {
    const commit = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'conf'], { encoding: 'utf8' }).stdout.trim() ? ' + working tree' : '';
    return `Portcullis ${commit || '?'}${dirty} (\`node ${path.relative(root, opt.cli)}\`)`;
  },
  settings: () => `\`portcullis train --spam DIR --ham DIR\` into a fresh data_dir per fold, then \`portcullis scan --json\` on the held-out files; ` +
    `configuration: ${opt['portcullis-config'] ? `${opt['portcullis-config']} with data_dir replaced` : 'the shipped defaults'} and DNS pointed at a closed port ` +
    '(every lookup fails at once: no DNS lists, no network).',
  async prepare() {
    if (!fs.existsSync(opt.cli)) throw new Error(`${opt.cli} not found: build first (npx tsc -p tsconfig.json)`);
    this.learned = [];
    this.trainSeconds = 0;
    this.notes = new Set();
  },
  config(k) {
    const base = opt['portcullis-config'] ? YAML.parse(fs.readFileSync(opt['portcullis-config'], 'utf8')) ?? {} : {
      hostname: 'mx.example.test', domains: ['example.test'], metrics: { enabled: false }, log: { level: 'warn' },
      dns: { servers: ['127.0.0.1:1'] },
    };
    const dir = path.join(work, 'portcullis', `f${k}`);
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    const file = path.join(dir, 'portcullis.yaml');
    fs.writeFileSync(file, YAML.stringify({ ...base, data_dir: path.join(dir, 'data') }));
    return file;
  },
  async fold(k, test) {
    const cfg = this.config(k);
    const { spamDir, hamDir } = trainDirs(k);
    const t0 = Date.now();
    const tr = await capture(process.execPath, [opt.cli, 'train', '--config', cfg, '--spam', spamDir, '--ham', hamDir]);
    this.trainSeconds += (Date.now() - t0) / 1000;
    if (tr.code !== 0) {
      const why = `train failed (exit ${tr.code}): ${(tr.stderr || tr.stdout).trim().split('\n').slice(0, 2).join(' ').slice(0, 300)}`;
      this.notes.add(`${why} — the scan ran UNTRAINED`);
      this.learned[k] = { error: why };
      say(`portcullis fold ${k + 1}/${K}: ${why}; scanning untrained`);
    } else {
      this.learned[k] = { output: tr.stdout.trim().split('\n').slice(-3).join(' ').slice(0, 300) };
      say(`portcullis fold ${k + 1}/${K}: trained in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${this.learned[k].output} (${elapsed()})`);
    }
    // The held-out files in two halves, one process per core; each process reads the Bayes
    // database read-only.
    const halves = [test.filter((_, i) => i % 2 === 0), test.filter((_, i) => i % 2 === 1)].filter((h) => h.length);
    const byFile = new Map();
    const errors = [];
    await Promise.all(halves.map(async (h) => {
      const r = await capture(process.execPath, [opt.cli, 'scan', '--config', cfg, '--json', ...h.map((m) => m.path)]);
      let list;
      try {
        list = parseScanJson(r.stdout);
      } catch (e) {
        errors.push(`scan exit ${r.code}: ${e.message}; stderr: ${r.stderr.trim().slice(0, 300)}`);
        return;
      }
      for (const o of list) byFile.set(path.resolve(String(o.file)), portcullisResult(o));
    }));
    for (const e of errors) { this.notes.add(e); say(`portcullis fold ${k + 1}/${K}: ${e}`); }
    return test.map((m) => byFile.get(path.resolve(m.path)) ?? { error: errors[0] ?? 'no result for this file in the scan output' });
  },
  trainInfo(k) { return this.learned?.[k]; },
};

// ---------------------------------------------------------------------------------------------
// Scoring

function metrics(list, test) {
  const c = { tp: 0, fn: 0, fp: 0, tn: 0 };
  const sub = {};
  const grp = {};
  for (const { m, r } of list) {
    const flagged = !r.error && test(r);
    const key = m.label === 'spam' ? (flagged ? 'tp' : 'fn') : flagged ? 'fp' : 'tn';
    c[key]++;
    const s = (sub[m.subset] ??= { label: m.label, n: 0, flagged: 0 });
    s.n++;
    if (flagged) s.flagged++;
    const g = (grp[m.group ?? m.subset] ??= { spam: 0, tp: 0, ham: 0, fp: 0 });
    if (m.label === 'spam') { g.spam++; if (flagged) g.tp++; } else { g.ham++; if (flagged) g.fp++; }
  }
  const spam = c.tp + c.fn;
  const ham = c.fp + c.tn;
  const recall = spam ? c.tp / spam : null;
  const precision = c.tp + c.fp ? c.tp / (c.tp + c.fp) : null;
  return {
    ...c, spam, ham, recall, fp_rate: ham ? c.fp / ham : null, precision,
    f1: recall !== null && precision !== null && recall + precision > 0 ? (2 * recall * precision) / (recall + precision) : null,
    by_subset: Object.fromEntries(Object.entries(sub).map(([k, v]) => [k, { ...v, rate: v.n ? v.flagged / v.n : null }])),
    by_group: grp,
  };
}

// The threshold curve: recall and FP rate at each score threshold of a fixed grid (score ≥ t),
// and the best recall each engine reaches within a false-positive budget.
const CURVE_THRESHOLDS = [-2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20];
const FP_BUDGETS = [0.001, 0.005, 0.01, 0.02];
function curve(list) {
  const ok = list.filter(({ r }) => !r.error && typeof r.score === 'number');
  const spam = list.filter(({ m }) => m.label === 'spam').length;
  const ham = list.filter(({ m }) => m.label === 'ham').length;
  const spamScores = ok.filter(({ m }) => m.label === 'spam').map(({ r }) => r.score);
  const hamScores = ok.filter(({ m }) => m.label === 'ham').map(({ r }) => r.score).sort((a, b) => b - a);
  const at = (t) => ({ threshold: t, recall: spam ? spamScores.filter((x) => x >= t).length / spam : null, fp_rate: ham ? hamScores.filter((x) => x >= t).length / ham : null });
  const budgets = FP_BUDGETS.map((b) => {
    const allowed = Math.floor(b * ham);
    // The lowest threshold with at most `allowed` ham at or above it: just above the ham ranked allowed+1.
    const t = allowed < hamScores.length ? hamScores[allowed] : -Infinity;
    const tp = spamScores.filter((x) => x > t).length;
    return { budget: b, allowed, threshold: Number.isFinite(t) ? t : null, recall: spam ? tp / spam : null, fp: hamScores.filter((x) => x > t).length };
  });
  return { grid: CURVE_THRESHOLDS.map(at), budgets };
}

/** symbol → messages it fired on, per class (scores of 0 are not in the results). */
function symbolHits(list) {
  const hits = {};
  for (const { m, r } of list) {
    if (r.error) continue;
    for (const name of new Set((r.symbols ?? []).map((x) => String(x).replace(/\(.*$/, '')))) {
      const h = (hits[name] ??= { spam: 0, ham: 0 });
      h[m.label]++;
    }
  }
  return hits;
}

// ---------------------------------------------------------------------------------------------
// Run

const engineImpl = { portcullis, spamassassin, rspamd };
const missing = ensurePeers(ENGINES, { log: path.join(work, 'apt.log') });
const results = {};
const engineInfo = {};

for (const name of ENGINES) {
  const e = engineImpl[name];
  const info = (engineInfo[name] = { version: null, settings: null, seconds: null, train_seconds: null, errors: 0, notes: [], folds: [] });
  const t0 = Date.now();
  const need = name === 'spamassassin' ? /spam/ : name === 'rspamd' ? /rspamd|redis/ : null;
  const lacking = need ? missing.filter((m) => need.test(m)) : [];
  if (lacking.length) { info.error = `not installed: ${lacking.join(', ')}`; say(`${name}: ${info.error}`); continue; }
  info.version = e.version();
  info.settings = e.settings();
  say(`${name}: ${info.version}`);
  try {
    await e.prepare();
    results[name] = new Array(messages.length);
    for (let k = 0; k < K; k++) {
      const idx = messages.map((m, i) => (m.fold === k ? i : -1)).filter((i) => i >= 0);
      const test = idx.map((i) => messages[i]);
      const train = messages.filter((m) => m.fold !== k);
      const tf = Date.now();
      const rs = await e.fold(k, test, train);
      idx.forEach((i, j) => { results[name][i] = rs[j]; });
      const fm = metrics(idx.map((i) => ({ m: messages[i], r: results[name][i] })), RULES[name][0].test);
      const errs = rs.filter((r) => r.error).length;
      info.folds.push({ fold: k, messages: test.length, seconds: (Date.now() - tf) / 1000, recall: fm.recall, fp: fm.fp, fp_rate: fm.fp_rate, errors: errs, training: e.trainInfo?.(k) ?? null });
      say(`${name} fold ${k + 1}/${K}: ${test.length} scanned in ${((Date.now() - tf) / 1000).toFixed(0)}s; recall ${(fm.recall * 100).toFixed(1)}%, ` +
        `FP ${fm.fp}/${fm.ham}${errs ? `, ${errs} errors` : ''} (${elapsed()})`);
    }
  } catch (err) {
    info.error = String(err?.message ?? err);
    say(`${name}: FAILED: ${info.error}`);
    delete results[name];
  } finally {
    await e.finish?.();
  }
  info.seconds = (Date.now() - t0) / 1000;
  info.train_seconds = e.trainSeconds ?? null;
  info.notes.push(...(e.notes ?? []));
  if (results[name]) info.errors = results[name].filter((r) => r?.error).length;
}

// ---------------------------------------------------------------------------------------------
// Report

const sh = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim() ?? '';
const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
const out = {
  date: new Date().toISOString(),
  machine: {
    nproc: Number(sh('nproc', [])) || os.cpus().length,
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo) || [])[1] || 'unknown',
    memory_gib: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: os.release(), node: process.version, loadavg_start: LOADAVG_START, loadavg_end: loadavg(),
  },
  corpus: {
    path: opt.corpus, spam: count((m) => m.label === 'spam'), ham: count((m) => m.label === 'ham'),
    subsets: Object.fromEntries(subsets.map((s) => [s, count((m) => m.subset === s)])), index_tsv: corpus.hasSubsets,
  },
  folds: K,
  grouped: GROUPED,
  mask: MASK,
  fold_rule: GROUPED
    ? 'grouped by source (index.tsv source_repo): whole sources, largest first, each to the fold with the fewest messages so far'
    : 'files of each class sorted by name; the i-th (from 0) goes to fold i mod k',
  fold_groups: GROUPED ? [...Array(K).keys()].map((k) => [...new Set(messages.filter((m) => m.fold === k).map((m) => m.group))]) : null,
  wall_seconds: Math.round((Date.now() - started) / 1000),
  engines: {},
  messages: messages.map((m, i) => ({
    name: m.name, label: m.label, subset: m.subset, group: m.group, fold: m.fold,
    results: Object.fromEntries(Object.keys(results).map((e) => [e, results[e][i]])),
  })),
};
/** The figures of one engine from its per-message results (`list`: [{ m, r }] over the corpus). */
function summarise(name, entry, list) {
  entry.rules = RULES[name].map((rule) => ({
    id: rule.id, label: rule.label, ...metrics(list, rule.test),
    false_positive_files: list.filter(({ m, r }) => m.label === 'ham' && !r.error && rule.test(r)).map(({ m }) => m.name),
  }));
  const def = RULES[name][0].test;
  entry.false_positives = list.filter(({ m, r }) => m.label === 'ham' && !r.error && def(r))
    .map(({ m, r }) => ({ file: m.name, subset: m.subset, score: r.score, action: r.action, symbols: r.symbols }));
  entry.false_negatives = list.filter(({ m, r }) => m.label === 'spam' && (r.error || !def(r))).length;
  entry.error_samples = [...new Set(list.filter(({ r }) => r.error).map(({ r }) => r.error))].slice(0, 3);
  entry.curve = curve(list);
  entry.symbol_hits = symbolHits(list);
  return entry;
}
for (const name of ENGINES) {
  const entry = { ...engineInfo[name] };
  if (results[name]) summarise(name, entry, messages.map((m, i) => ({ m, r: results[name][i] })));
  out.engines[name] = entry;
}
// --merge: engines measured in an earlier run on the same corpus and folds (e.g. the peers, which
// do not change, while Portcullis is re-measured) are carried over into this report.
for (const file of opt.merge ?? []) {
  const prev = JSON.parse(fs.readFileSync(file, 'utf8'));
  const same = prev.folds === K && prev.messages?.length === out.messages.length &&
    prev.messages.every((m, i) => m.name === out.messages[i].name && m.fold === out.messages[i].fold && m.label === out.messages[i].label);
  if (!same) throw new Error(`--merge ${file}: not the same corpus and folds as this run (${prev.messages?.length} messages, ${prev.folds} folds)`);
  for (const [name, e] of Object.entries(prev.engines)) {
    if (out.engines[name]) continue;
    out.engines[name] = { ...e, notes: [...(e.notes ?? []), `measured on ${prev.date.slice(0, 10)} (merged from ${path.basename(file)})`] };
    prev.messages.forEach((m, i) => { if (m.results?.[name]) out.messages[i].results[name] = m.results[name]; });
    // The figures are recomputed from the per-message results, so that they follow this script's rules.
    if (e.rules) summarise(name, out.engines[name], messages.map((m, i) => ({ m, r: out.messages[i].results[name] ?? { error: 'missing in the merged file' } })));
  }
  out.wall_seconds_merged = (out.wall_seconds_merged ?? 0) + (prev.wall_seconds ?? 0);
}
fs.mkdirSync(path.dirname(path.resolve(opt.out)), { recursive: true });
fs.writeFileSync(opt.out, JSON.stringify(out, null, 1) + '\n');

process.stderr.write(`\n${K}-fold cross-validation, ${out.corpus.spam} spam + ${out.corpus.ham} ham, ${out.wall_seconds}s\n`);
for (const [name, e] of Object.entries(out.engines)) {
  if (!e.rules) { process.stderr.write(`${name}: not measured: ${e.error}\n`); continue; }
  for (const r of e.rules) {
    const hamSubs = Object.entries(r.by_subset).filter(([, v]) => v.label === 'ham');
    process.stderr.write(`${name.padEnd(13)} ${r.id.padEnd(8)} recall ${pct(r.recall)} (${r.tp}/${r.spam})  FP ${pct(r.fp_rate, 2)} (${r.fp}/${r.ham})  ` +
      `precision ${num(r.precision)}  F1 ${num(r.f1)}${hamSubs.length > 1 ? `  [${hamSubs.map(([k, v]) => `${k} ${v.flagged}/${v.n}`).join(', ')}]` : ''}\n`);
  }
  if (e.errors) process.stderr.write(`${name.padEnd(13)} ${e.errors} messages not scanned (counted as not spam): ${e.error_samples.join(' | ').slice(0, 300)}\n`);
  for (const n of e.notes) process.stderr.write(`${name.padEnd(13)} note: ${n}\n`);
}
process.stderr.write(`results: ${opt.out}\n`);

if (opt['write-docs']) {
  // This run's corpus beside the latest results of the other dev corpora (by their default file names).
  const dir = path.join(root, '.bench/results');
  const others = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^spam-accuracy-.+\.json$/.test(f)).map((f) => path.join(dir, f))
    .filter((f) => path.resolve(f) !== path.resolve(opt.out)).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')))
    .filter((r) => r.corpus?.path && path.basename(r.corpus.path) !== path.basename(out.corpus.path)) : [];
  fs.writeFileSync(opt.docs, renderDocs([out, ...others]));
  process.stderr.write(`wrote ${path.relative(root, opt.docs)}\n`);
}
cleanup();

// ---------------------------------------------------------------------------------------------
// docs/spam-accuracy.md


/** docs/spam-accuracy.md from one results file per corpus (the 2002 set first). */
function renderDocs(list) {
  const rs = [...list].sort((a, b) => Number(Boolean(a.grouped)) - Number(Boolean(b.grouped)) || (a.corpus.path < b.corpus.path ? -1 : 1));
  const L = [];
  const p = (...l) => L.push(...l);
  p('# Spam accuracy: Portcullis, SpamAssassin and rspamd', '',
    '<!-- The results below are GENERATED by `node bench/spam-eval.mjs --write-docs`. Re-run it rather than editing them. -->', '',
    'How often each engine catches spam and how often it flags good mail, measured the same way for all three by ' +
    'cross-validation on the labelled dev corpora (issues #5 and #14): the 2002 SpamAssassin set in 5 stratified folds, and the ' +
    'modern (2019–2026) set in 5 folds **grouped by source**, with its artefacts masked (see "Masking" below). ' +
    'Speed is measured apart, on a fixed message set, by `bench/spam-speed.mjs` (see docs/benchmarks.md, section "Spam scanning").', '');
  p('## Summary', '', '| corpus | folds | engine | default decision: recall | FP | recall at FP ≤ 0.1% | at ≤ 0.5% | at ≤ 1% |', '|---|---|---|---:|---:|---:|---:|---:|');
  for (const r of rs) {
    for (const n of ENGINE_ORDER) {
      const e = r.engines[n];
      if (!e?.rules) continue;
      const x = e.rules[0];
      const b = (v) => { const y = e.curve?.budgets.find((z) => z.budget === v); return y ? `${pct(y.recall)} (${y.fp} FP)` : '—'; };
      p(`| ${path.basename(r.corpus.path)} | ${r.folds}${r.grouped ? ', by source' : ''} | ${ENGINE_NAMES[n]} | ${pct(x.recall)} | ${pct(x.fp_rate, 2)} (${x.fp}/${x.ham}) | ${b(0.001)} | ${b(0.005)} | ${b(0.01)} |`);
    }
  }
  p('', 'Recall at a false-positive budget: each engine with its own score threshold set just above its ham ranked budget + 1 (highest first) — ' +
    'how well the scores separate the classes, whatever the default threshold.', '');
  for (const r of rs) p(...renderDoc(r));
  p(...maskingSection(), ...methodSection(rs[0]));
  return L.join('\n') + '\n';
}

function maskingSection() {
  return ['## Masking (modern dev set)', '',
    'bench/corpus-mask.mjs rewrites each message before any engine sees it (all engines get the same bytes). The modern set\'s MANIFEST lists ' +
    'artefacts that separate the labels for the wrong reason; each goes:', '',
    '- **Upstream verdicts** (both sets): `X-Spam-*`, `X-Virus-*`, `X-CRM114-*`, `X-Amavis-*`, Barracuda/Proofpoint/Mimecast/Microsoft anti-spam fields, our own `X-Portcullis-*`. ' +
      '166 of the 197 foff ham carry the collector\'s `X-Spam-Flag: YES`.',
    '- The list and selection masks below apply to messages that came through the list archive (a `Received`, `Delivered-To` or `X-Original-To` naming `lfdr.de`): ' +
      'the foff collection\'s newsletters keep their own `List-Unsubscribe`, and its replies their `In-Reply-To` — the senders wrote those, and they are what real commercial mail looks like.',
    '- **List headers**: `List-*`, `Precedence`, `X-Mailman-*`, `X-BeenThere`, `Errors-To`, `Delivered-To`/`X-Original-To` (`lists+…@lfdr.de`), Google Groups\' ' +
      '`X-Original-Sender`/`X-Original-Authentication-Results`/`X-Google-Group-Id`, Mailman 3\'s `Message-ID-Hash`/`X-MailFrom`, groups.io and SourceForge fields; ' +
      'a `Return-Path`/`Sender` that is a list bounce address.',
    '- **The archive hop**: `Received`, `Authentication-Results`, `ARC-*`, `Received-SPF` fields naming `lfdr.de` (the archive\'s mail host).',
    '- **Subject**: reply prefixes (`Re:`, `AW:`, `Fwd:` …) and the list\'s own tag (`[linux-mtd]`, `[V9fs-developer]`: a bracketed tag equal to the List-Id\'s name). ' +
      'Other tags (`[PATCH v2]`) stay: they are the sender\'s.',
    '- **Selection artefacts**: `In-Reply-To`, `References`, `Cc`, `Thread-Index`/`Thread-Topic` (list ham was selected as replies, list spam as unanswered non-replies).',
    '- **List footers** appended in plain text (Mailman 2/3, Google Groups, groups.io). Footers inside base64 or quoted-printable parts stay (re-encoding would change more than the footer).',
    '- **Line endings** (both sets, all messages): CRLF → LF (only foff files had CRLF).',
    '', 'Left as they are, and why: From rewriting by the lists (`X via List`: in both labels), the list server\'s own inner Received hops (both labels), ' +
      'quoted text in replies (`> ` lines, "On … wrote:" — a real trait of ham, but a selection artefact here; this makes the modern figures optimistic for any engine that learns it), ' +
      'DKIM signatures (no engine checks them: network tests off). Figures on the modern set remain development figures.', ''];
}

/** The section of one corpus. */
function renderDoc(r0) {
  // Engines in a fixed order, whatever order they were run or merged in.
  const order = ENGINE_ORDER;
  const r = { ...r0, engines: Object.fromEntries(Object.entries(r0.engines).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))) };
  const L = [];
  const p = (...l) => L.push(...l);
  const names = ENGINE_NAMES;
  p(`## ${path.basename(r.corpus.path)}: ${r.folds} folds${r.grouped ? ' grouped by source' : ', stratified'}${r.mask && r.mask !== 'none' ? `, mask ${r.mask}` : ''}`, '',
    `${r.date.slice(0, 10)}, ${r.machine.nproc} CPUs (${r.machine.cpu}), ${r.machine.memory_gib} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node}. ` +
    `Corpus: \`${path.basename(r.corpus.path)}\`, ${r.corpus.spam} spam and ${r.corpus.ham} ham` +
    `${r.corpus.index_tsv ? ` (${Object.entries(r.corpus.subsets).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}. ` +
    `Whole run: ${Math.round(r.wall_seconds / 60)} min${r.wall_seconds_merged ? ` (+ ${Math.round(r.wall_seconds_merged / 60)} min for the engines merged from an earlier run)` : ''}.` +
    (r.machine.loadavg_start ? ` Load average (1, 5, 15 min) at start / end: ${r.machine.loadavg_start} / ${r.machine.loadavg_end}` +
      `${Math.max(...[r.machine.loadavg_start, r.machine.loadavg_end].map((x) => Number(String(x).split(' ')[1]))) > r.machine.nproc ? ' — above the core count: other work shared the machine, so the times are upper bounds' : ''}.` : ''), '',
    'Each engine\'s default spam decision first, then its other thresholds. Recall = spam flagged / spam; FP rate = ham flagged / ham; ' +
    'precision = spam among the flagged; F1 = their harmonic mean. A message an engine failed to scan counts as not flagged.', '');
  const hamSubsets = Object.entries(r.corpus.subsets).filter(([k]) => r.messages.some((m) => m.subset === k && m.label === 'ham'));
  // Subset columns only where a subset is ham alone (the 2002 set's easy/hard ham); the modern set's
  // sources hold both classes and have their own table below.
  const split = hamSubsets.length > 1 && !hamSubsets.some(([k]) => r.messages.some((m) => m.subset === k && m.label === 'spam'));
  p(`| engine | spam decision | spam recall | ham false positives | precision | F1 |${split ? hamSubsets.map(([k]) => ` FP ${k} |`).join('') : ''}`,
    `|---|---|---:|---:|---:|---:|${split ? hamSubsets.map(() => '---:|').join('') : ''}`);
  const absent = order.filter((n) => !r.engines[n]);
  for (const [name, e] of [...Object.entries(r.engines), ...absent.map((n) => [n, { error: 'not in this run' }])]) {
    if (!e.rules) { p(`| ${names[name]} | not measured: ${esc(e.error ?? 'no results')} | — | — | — | — |${split ? hamSubsets.map(() => ' — |').join('') : ''}`); continue; }
    for (const [i, x] of e.rules.entries()) {
      const b = (s) => (i === 0 ? `**${s}**` : s);
      p(`| ${i === 0 ? names[name] : ''} | ${esc(x.label)}${i === 0 ? ' (default)' : ''} | ${b(`${pct(x.recall)} (${x.tp}/${x.spam})`)} | ${b(`${pct(x.fp_rate, 2)} (${x.fp}/${x.ham})`)} | ` +
        `${num(x.precision)} | ${b(num(x.f1))} |${split ? hamSubsets.map(([k]) => ` ${x.by_subset[k] ? `${x.by_subset[k].flagged}/${x.by_subset[k].n}` : '—'} |`).join('') : ''}`);
    }
  }
  p('');
  // The engines' defaults flag different amounts of ham; at one false-positive budget (the
  // fewest any default produced) each engine's own score threshold tells how much spam it
  // separates from ham — the comparison that does not depend on where a default was put.
  const scored = Object.keys(r.engines).filter((n) => r.engines[n].rules && r.messages.every((m) => typeof m.results?.[n]?.score === 'number'));
  if (scored.length > 1) {
    const budget = Math.min(...scored.map((n) => r.engines[n].rules[0].fp));
    p(`At the same false-positive budget — at most ${budget} ham of ${r.corpus.ham} flagged, each engine with its own score threshold set just above the score of its ham message ranked ${budget + 1} (highest first):`, '',
      '| engine | score threshold | spam recall | ham false positives |', '|---|---:|---:|---:|');
    for (const n of scored) {
      const ham = r.messages.filter((m) => m.label === 'ham').map((m) => m.results[n].score).sort((a, b) => b - a);
      const spam = r.messages.filter((m) => m.label === 'spam').map((m) => m.results[n].score);
      const t = ham[budget];
      const fp = ham.filter((x) => x > t).length;
      const tp = spam.filter((x) => x > t).length;
      p(`| ${names[n]} | > ${num(t)} | ${pct(tp / spam.length)} (${tp}/${spam.length}) | ${fp} |`);
    }
    p('');
  }
  const notes = Object.entries(r.engines).flatMap(([n, e]) => [...(e.notes ?? []).map((x) => `${names[n]}: ${x}`),
    ...(e.errors ? [`${names[n]}: ${e.errors} messages not scanned (${(e.error_samples ?? []).join(' | ').slice(0, 200)})`] : [])]);
  if (notes.length) p('Notes on this run:', '', ...notes.map((x) => `- ${esc(x)}`), '');
  const others = Object.entries(r.engines).flatMap(([n, e]) => (e.rules ?? []).slice(1).filter((x) => x.false_positive_files?.length)
    .map((x) => `- ${names[n]}, ${esc(x.label)}: ${x.false_positive_files.length > 40 ? `${x.false_positive_files.slice(0, 40).join(', ')} and ${x.false_positive_files.length - 40} more` : x.false_positive_files.join(', ')}`));
  if (others.length) p('False positives at the other thresholds (the default decision\'s are listed with their symbols below):', '', ...others, '');
  p('Per fold (default decision): recall / false positives and the seconds the fold took (a daemon\'s start, training, scanning; ' +
    'SpamAssassin\'s training is not in its folds: sa-learn ran for all folds first, two at a time, and is the "training" column).', '',
    `| engine |${[...Array(r.folds).keys()].map((k) => ` fold ${k + 1} |`).join('')} training | engine total |`, `|---|${[...Array(r.folds)].map(() => '---|').join('')}---:|---:|`);
  for (const [name, e] of Object.entries(r.engines)) {
    if (!e.folds?.length) continue;
    p(`| ${names[name]} |${e.folds.map((f) => ` ${pct(f.recall)} / ${f.fp} FP, ${Math.round(f.seconds)} s |`).join('')} ${e.train_seconds === null || e.train_seconds === undefined ? '—' : `${Math.round(e.train_seconds)} s`} | ${Math.round(e.seconds)} s |`);
  }
  p('');
  p(...perSource(r), ...curveSection(r), ...hitRates(r));
  p('### What each engine ran', '');
  for (const [name, e] of Object.entries(r.engines)) p(`- **${names[name]}** — ${e.version ?? 'not run'}: ${e.settings ?? esc(e.error ?? '')}`);
  p('- None of the engines had network tests: the mail is archived (2002, or 2019–2026 list archives with rewritten bodies), so DNS lists, SPF, DKIM and DMARC would mean nothing today (and the machine is offline). ' +
    'This measures content analysis (rules, Bayes, heuristics) only.', '');
  p('### False positives', '',
    'Every ham message flagged at the default decision (file names inside the corpus, so they can be read; the score and the symbols that fired).', '');
  for (const [name, e] of Object.entries(r.engines)) {
    if (!e.false_positives) continue;
    p(`#### ${names[name]} (${e.false_positives.length})`, '');
    if (!e.false_positives.length) { p('None.', ''); continue; }
    const max = 30;
    p('| file | subset | score | symbols |', '|---|---|---:|---|');
    for (const f of [...e.false_positives].sort((a, b) => b.score - a.score).slice(0, max)) {
      p(`| ${f.file} | ${f.subset} | ${num(f.score, 1)} | ${esc((f.symbols ?? []).slice(0, 12).join(' '))}${(f.symbols ?? []).length > 12 ? ' …' : ''} |`);
    }
    if (e.false_positives.length > max) p('', `…and ${e.false_positives.length - max} more (all in the JSON results).`);
    p('');
  }
  return L;
}

/** Recall and FP per source (grouped folds: each source was tested by a model that never saw it). */
function perSource(r) {
  const engines = ENGINE_ORDER.filter((n) => r.engines[n]?.rules);
  const groups = [...new Set(r.messages.map((m) => m.group ?? m.subset))];
  if (groups.length < 2 || !engines.length) return [];
  const L = [`### Per source (default decision)${r.grouped ? ': each source scanned by a model trained on the other folds only' : ''}`, '',
    `| source | spam | ham |${engines.map((n) => ` ${ENGINE_NAMES[n]} recall | ${ENGINE_NAMES[n]} FP |`).join('')}`,
    `|---|---:|---:|${engines.map(() => '---:|---:|').join('')}`];
  for (const g of groups) {
    const first = r.engines[engines[0]].rules[0].by_group?.[g];
    if (!first) continue;
    L.push(`| ${g} | ${first.spam} | ${first.ham} |${engines.map((n) => {
      const x = r.engines[n].rules[0].by_group?.[g];
      return x ? ` ${x.spam ? pct(x.tp / x.spam) : '—'} | ${x.ham ? `${x.fp} (${pct(x.fp / x.ham, 1)})` : '—'} |` : ' — | — |';
    }).join('')}`);
  }
  if (r.fold_groups) L.push('', `Folds: ${r.fold_groups.map((g, k) => `${k + 1}: ${g.join(' + ')}`).join('; ')}.`);
  L.push('');
  return L;
}

/** The threshold curve: recall and FP rate at score ≥ t for each engine. */
function curveSection(r) {
  const engines = ENGINE_ORDER.filter((n) => r.engines[n]?.curve);
  if (!engines.length) return [];
  const L = ['### Threshold curve', '', 'Recall / FP rate with the spam decision at score ≥ t (each engine\'s own score scale: SpamAssassin marks at 5, rspamd at 6, Portcullis tags at 5 and junks at 6).', '',
    `| t |${engines.map((n) => ` ${ENGINE_NAMES[n]} |`).join('')}`, `|---:|${engines.map(() => '---|').join('')}`];
  const ts = r.engines[engines[0]].curve.grid.map((x) => x.threshold);
  for (const t of ts) {
    L.push(`| ${t} |${engines.map((n) => { const x = r.engines[n].curve.grid.find((y) => y.threshold === t); return x ? ` ${pct(x.recall)} / ${pct(x.fp_rate, 2)} |` : ' — |'; }).join('')}`);
  }
  L.push('');
  return L;
}

/** Per-check hit rates: symbol → share of spam and of ham it fired on (Portcullis). */
function hitRates(r) {
  const e = r.engines.portcullis;
  if (!e?.symbol_hits) return [];
  const spam = r.messages.filter((m) => m.label === 'spam').length;
  const ham = r.messages.filter((m) => m.label === 'ham').length;
  const rows = Object.entries(e.symbol_hits).sort((a, b) => (b[1].spam + b[1].ham) - (a[1].spam + a[1].ham) || (a[0] < b[0] ? -1 : 1));
  return ['### Portcullis per-check hit rates', '', `Symbols with a non-zero score, share of the ${spam} spam and ${ham} ham they fired on (held-out scans). ` +
    'A check that fires on ham as often as on spam earns no score.', '',
    '| symbol | % of spam | % of ham |', '|---|---:|---:|',
    ...rows.map(([n, h]) => `| ${n} | ${pct(h.spam / spam)} (${h.spam}) | ${pct(h.ham / ham, 2)} (${h.ham}) |`), ''];
}

/** The fixed part of docs/spam-accuracy.md: how the figures are made and how to make them again. */
function methodSection(r) {
  return [
    '## Method', '',
    `- **Folds**: the files of each class (spam/, ham/) sorted by name, the i-th one (from 0) in fold i mod ${r.folds}. ` +
      'Each fold thus holds the same share of spam and ham, and, since the dev corpus numbers hard_ham after easy_ham, of both ham subsets. ' +
      'No file name pattern is assumed beyond the spam/ and ham/ folders.',
    '- **Grouped folds** (the modern set; `--group-by source`, the default when index.tsv names at least as many `source_repo`s as folds): ' +
      'every message of one source (one list archive; foff-positive and foff-negative are one collection) is in the same fold, so no engine is ever ' +
      'tested on a source it was trained on. Whole sources go to folds largest first, each to the fold with the fewest messages so far. ' +
      'The cost is honest and visible: the only commercial ham (foff-negative) is tested by models that never saw commercial ham.',
    '- **Masking** (`--mask`, see "Masking"): upstream verdict headers are stripped from both sets; the modern set is also stripped of its list and selection artefacts.',
    '- **Messages** are fed byte for byte as in the corpus (LF line endings) with the first line dropped when it is an mbox envelope line (`From addr date`).',
    `- **Per fold, per engine**: fresh state (a new Bayes database, a new daemon), Bayes trained on the other ${r.folds - 1} folds, ` +
      'then every message of the held-out fold scanned once; its score, action, decision and symbols are kept (`--out` JSON, `messages[]`). ' +
      'Every message is scanned exactly once over the whole run, by an engine that never learned it.',
    '  - SpamAssassin: `sa-learn --no-sync --spam DIR`, `--ham DIR`, then `--sync`, into a per-fold `bayes_path`; spamd started on that database; ' +
      'spam = spamd\'s own verdict (score ≥ `required_score`, 5.0 stock).',
    '  - rspamd: a new Redis and a new rspamd per fold; every training message posted to the controller\'s `/learnspam` or `/learnham` with ' +
      '`Learn-Type: bulk` (the stock learn condition otherwise skips messages Bayes already classifies confidently once both classes have 200 learns); ' +
      'messages rspamd refuses to learn (the same Message-ID learned twice, too few tokens) are counted in the JSON (`folds[].training`). ' +
      'Scanning: `/checkv2` on the normal worker. spam = action `add header`, `rewrite subject` or `reject` (the stock actions that mark or refuse mail: score ≥ 6); ' +
      '`greylist` (score ≥ 4) is a delay, not a spam verdict, and is shown as its own row, as is `reject` alone (score ≥ 15).',
    '  - Portcullis: `portcullis train --config CFG --spam DIR --ham DIR` into a per-fold `data_dir`, then `portcullis scan --config CFG --json FILE...` ' +
      '(two processes, one per core). spam = action `junk` or `reject`; the tag threshold (`tag` or above) and `reject` alone are shown as their own rows.',
    '- **Off for every engine**: network tests (DNS lists, URI lists, SPF, DKIM, DMARC, Razor, Pyzor, DCC, fuzzy hashes), auto-learning, ' +
      'and reputation or rate state learned from traffic. The corpus is mail from 2002, so network results would mean nothing anyway; ' +
      'what is compared is content analysis: rules, heuristics and Bayes.',
    '- **Untouched**: each engine\'s stock rules, scores and thresholds (Portcullis: conf/scores.yaml and its defaults).',
    '- The engines run one after another (never at once), each with both cores: SpamAssassin\'s four spamd children with six messages in flight, ' +
      'rspamd\'s two workers with twelve in flight, Portcullis as two scan processes. sa-learn (single-threaded) trains two folds at a time.',
    '', '## Running it', '',
    '```',
    'npx tsc -p tsconfig.json                      # Portcullis is measured through dist/',
    'node bench/spam-eval.mjs                      # the dev corpus, 5 folds, all three engines (≈ 10 min on 2 idle cores)',
    'node bench/spam-eval.mjs --write-docs         # … and rewrite this page',
    'node bench/spam-eval.mjs --corpus /path/to/other.tar.gz --out /tmp/other.json',
    'node bench/spam-eval.mjs --corpus /path/to/dir --engines portcullis --folds 10',
    'node bench/spam-eval.mjs --corpus ../shared/corpus/modern-dev.tar.gz --engines portcullis   # Portcullis alone, grouped folds (≈ 2 min)',
    'node bench/spam-eval.mjs --corpus ../shared/corpus/modern-dev.tar.gz --engines portcullis \\',
    '  --merge .bench/results/peers-modern.json --write-docs   # re-measure Portcullis, carry the peers over',
    'node bench/spam-eval.mjs --render-only .bench/results/spam-accuracy-sa2002.json .bench/results/spam-accuracy-modern.json',
    '```', '',
    '- `--corpus PATH`: a tarball (`.tar.gz`, `.tgz`, `.tar`) or a directory holding `spam/` and `ham/` (nested folders allowed, dotfiles skipped); ' +
      'an `index.tsv` at its top with `file` and `subset` columns (as in the dev corpus: `ham/0001.eml`, `easy_ham`) splits the false positives by subset. ' +
      'A tarball with one top folder holding spam/ and ham/ works too.',
    '- `--engines` (default all three), `--folds` (5), `--out` (`.bench/results/spam-accuracy-<corpus>.json`), `--cli` (the Portcullis entry point, default ' +
      '`dist/src/cli/main.js`), `--portcullis-config FILE` (a configuration to start from; its `data_dir` is replaced per fold), `--keep` (keep the work folder).',
    '- As root, missing Debian packages are installed (`spamassassin`, `spamd`, `spamc`, `rspamd`, `redis-server`); an engine whose programs are missing is reported as not measured.',
    '- Progress goes to stderr; the summary is printed at the end; the JSON holds every message\'s result for every engine, every false positive, and per-fold figures.',
    '- Another corpus\'s figures are not comparable with the ones above unless it has the same spam/ham mix: recall and FP rate are, precision and F1 depend on the mix.',
    '',
  ];
}
