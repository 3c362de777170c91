// The peers of the spam comparison, run offline on loopback as ../shared/peers/README.md says:
// SpamAssassin (spamd, sa-learn, spamc) and rspamd (with Redis for its Bayes, and a DNS server
// that answers NXDOMAIN at once so its resolver never waits). Also the corpus plumbing shared by
// bench/spam-eval.mjs and bench/spam-speed.mjs. Plain JavaScript; dns-packet is the only library.
//
// Every daemon gets its own temporary directory and a free loopback port; nothing touches
// /etc/spamassassin, /etc/rspamd or the system services.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import dnsPacket from 'dns-packet';
import { freePort, startProcess, stopProcess, waitPort, tail, sleep } from './procs.mjs';

export const say = (...a) => process.stderr.write(`[spam] ${a.join(' ')}\n`);

// ---------------------------------------------------------------------------------------------
// Packages

const PACKAGES = [
  { pkg: 'spamassassin', bin: '/usr/bin/sa-learn' },
  { pkg: 'spamd', bin: '/usr/sbin/spamd' }, // Debian 12 ships spamd apart from spamassassin
  { pkg: 'spamc', bin: '/usr/bin/spamc' },
  { pkg: 'rspamd', bin: '/usr/bin/rspamd' },
  { pkg: 'redis-server', bin: '/usr/bin/redis-server' },
];

/**
 * Installs the Debian packages of the engines asked for when their programs are missing (root and
 * apt-get needed, as the other bench scripts do; BENCH_NO_INSTALL=1 forbids it). Returns the list of
 * programs still missing.
 */
export function ensurePeers(engines, { log } = {}) {
  const want = PACKAGES.filter((p) => (engines.includes('spamassassin') && /^spam/.test(p.pkg)) ||
    (engines.includes('rspamd') && /rspamd|redis/.test(p.pkg)));
  const missing = () => want.filter((p) => !fs.existsSync(p.bin));
  if (missing().length && !process.env.BENCH_NO_INSTALL && process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get')) {
    const pkgs = missing().map((p) => p.pkg);
    say(`installing ${pkgs.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // Another engineer's apt-get may hold the dpkg lock: retry for a while.
    for (let i = 0; i < 12 && missing().length; i++) {
      if (i === 0) spawnSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore' });
      const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { env, encoding: 'utf8' });
      if (log) fs.appendFileSync(log, r.stdout + r.stderr);
      if (r.status !== 0) spawnSync('sleep', ['10']);
    }
  }
  return missing().map((p) => `${p.bin} (Debian package ${p.pkg})`);
}

export function versionOf(cmd, args, re) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const m = re.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1] : null;
}

// ---------------------------------------------------------------------------------------------
// Corpus

/** Drops the mbox envelope line ("From addr date") that the corpus files start with. */
export function stripFromLine(buf) {
  if (buf.length >= 5 && buf.toString('latin1', 0, 5) === 'From ') {
    const nl = buf.indexOf(0x0a);
    return nl < 0 ? Buffer.alloc(0) : buf.subarray(nl + 1);
  }
  return buf;
}

function walk(dir, rel, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, `${rel}/${e.name}`, out);
    else if (e.isFile()) out.push({ name: `${rel}/${e.name}`, file: full });
  }
}

/**
 * The messages of a corpus: a tarball (.tar.gz, .tgz, .tar) or a directory holding spam/ and
 * ham/ (any file names, nested folders allowed, dotfiles skipped). index.tsv, when present, gives
 * each file's subset (easy_ham / hard_ham …) and, with a source_repo column, its source. Returns { root, messages: [{ name, label, subset,
 * file }], cleanup }, sorted by name within each label. A tarball is extracted to a temp folder.
 */
export function loadCorpus(corpusPath) {
  let root = corpusPath;
  let cleanup = () => {};
  if (!fs.existsSync(corpusPath)) throw new Error(`corpus ${corpusPath}: no such file or directory`);
  if (fs.statSync(corpusPath).isFile()) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-spam-corpus-'));
    root = tmp;
    cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
    const z = /\.(tgz|gz)$/.test(corpusPath) ? ['-z'] : [];
    const r = spawnSync('tar', ['-x', ...z, '-f', corpusPath, '-C', root], { encoding: 'utf8' });
    if (r.status !== 0) { cleanup(); throw new Error(`corpus ${corpusPath}: tar failed: ${r.stderr.trim()}`); }
    // A tarball of one top folder (corpus/spam, corpus/ham) is accepted too.
    if (!fs.existsSync(path.join(root, 'spam'))) {
      const tops = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'spam')));
      if (tops.length === 1) root = path.join(root, tops[0]);
    }
  }
  const subsets = new Map();
  const index = path.join(root, 'index.tsv');
  if (fs.existsSync(index)) {
    const [head, ...lines] = fs.readFileSync(index, 'utf8').split('\n').filter(Boolean);
    const cols = head.split('\t');
    const fi = cols.indexOf('file');
    const si = cols.indexOf('subset');
    const ri = cols.indexOf('source_repo');
    if (fi >= 0 && si >= 0) for (const l of lines) { const c = l.split('\t'); subsets.set(c[fi].replace(/^\.\//, ''), { subset: c[si], source: ri >= 0 ? c[ri] : undefined }); }
  }
  const messages = [];
  for (const label of ['spam', 'ham']) {
    const dir = path.join(root, label);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) { cleanup(); throw new Error(`corpus ${corpusPath}: no ${label}/ folder`); }
    const files = [];
    walk(dir, label, files);
    for (const f of files) {
      const row = subsets.get(f.name);
      messages.push({ ...f, label, subset: row?.subset ?? (label === 'spam' ? 'spam' : 'ham'), source: row?.source });
    }
  }
  return { root, messages, hasSubsets: subsets.size > 0, cleanup };
}

// ---------------------------------------------------------------------------------------------
// Small plumbing

/** Runs fn over items with at most n in flight; results in item order. */
export async function mapPool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** Runs a command to completion; rejects with its stderr on a non-zero exit. */
export function run(cmd, args, { env, timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; if (err.length > 1e6) err = err.slice(-1e5); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: out, stderr: err });
      else reject(new Error(`${cmd} ${args.slice(0, 4).join(' ')}… exited ${code ?? signal}: ${err.trim().slice(-600)}`));
    });
  });
}

/** One HTTP request to 127.0.0.1 (keep-alive agent); resolves { status, body }. */
function httpRequest(agent, port, method, urlPath, headers, body, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers: { ...headers, 'Content-Length': body ? body.length : 0 } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeoutMs / 1000}s`)));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// A DNS server that answers NXDOMAIN to every question at once (rspamd's resolver retries on
// REFUSED and on silence until its timeout, which would make it measure its timeouts).

export async function startNxDns() {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    try {
      const q = dnsPacket.decode(msg);
      const reply = dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | 3, questions: q.questions });
      sock.send(reply, rinfo.port, rinfo.address);
    } catch { /* not a DNS query: ignore */ }
  });
  await new Promise((resolve, reject) => { sock.once('error', reject); sock.bind(0, '127.0.0.1', resolve); });
  return { port: sock.address().port, close: () => new Promise((r) => sock.close(() => r())) };
}

// ---------------------------------------------------------------------------------------------
// SpamAssassin

/**
 * A site configuration folder for spamd and sa-learn: the stock *.pre files (which load the
 * plugins: --siteconfigpath replaces /etc/spamassassin, so without them most rules stop firing)
 * and a local.cf with every network test off and Bayes as asked.
 */
export function writeSaSite(dir, { bayesPath, useBayes = true }) {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync('/etc/spamassassin')) {
    if (f.endsWith('.pre')) fs.copyFileSync(path.join('/etc/spamassassin', f), path.join(dir, f));
  }
  const lines = [
    '# Written by bench/spam-peers.mjs: offline, as in ../shared/peers/README.md',
    'dns_available no', 'skip_rbl_checks 1', 'use_razor2 0', 'use_pyzor 0', 'use_dcc 0',
    `use_bayes ${useBayes ? 1 : 0}`,
    // Learning only from the training folds: no auto-learning from scanned (test) messages.
    'bayes_auto_learn 0',
    'bayes_auto_expire 0',
    'use_auto_whitelist 0',
    'use_txrep 0',
  ];
  if (bayesPath) lines.push(`bayes_path ${bayesPath}`, 'bayes_file_mode 0777');
  fs.writeFileSync(path.join(dir, 'local.cf'), lines.join('\n') + '\n');
  return dir;
}

/**
 * Trains SpamAssassin's Bayes on two folders of messages (sa-learn --no-sync per class, then one
 * --sync: the journal is merged once instead of after every message).
 */
export async function saLearn(siteDir, { spamDir, hamDir }) {
  const base = ['--siteconfigpath', siteDir, '--no-sync'];
  const s = await run('sa-learn', [...base, '--spam', spamDir]);
  const h = await run('sa-learn', [...base, '--ham', hamDir]);
  await run('sa-learn', ['--siteconfigpath', siteDir, '--sync']);
  const n = (r) => Number(/from (\d+) message/.exec(r.stdout)?.[1] ?? NaN);
  return { spam: n(s), ham: n(h) };
}

/**
 * spamd on 127.0.0.1 (local tests only, -L), `children` scanning processes (sized for the cores),
 * running as nobody when started as root (spamd will not scan as root). Resolves when it answers
 * PING.
 */
export async function startSpamd({ siteDir, dir, children = 4, log }) {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const args = ['-L', '-x', '--siteconfigpath', siteDir, '-i', `127.0.0.1:${port}`, '-A', '127.0.0.1',
    '-m', String(children), '--min-children', String(children), '--min-spare', '1', '--max-spare', String(children),
    '-s', 'stderr', '-H', dir, '-r', path.join(dir, 'spamd.pid')];
  if (process.getuid?.() === 0) {
    args.push('-u', 'nobody');
    // nobody must read the site config and write the Bayes database.
    for (const d of [siteDir, dir]) fs.chmodSync(d, 0o777);
  }
  const proc = startProcess('/usr/sbin/spamd', args, { log });
  const deadline = Date.now() + 120_000;
  await waitPort(port, { proc, timeoutMs: 120_000 });
  for (;;) {
    try {
      if ((await spamdRequest(port, 'PING', null)).head.includes('PONG')) break;
    } catch { /* not ready */ }
    if (Date.now() > deadline) throw new Error(`spamd did not answer PING: ${tail(log)}`);
    await sleep(200);
  }
  const cpuPid = proc.pid;
  return { port, proc, pid: cpuPid, stop: () => stopProcess(proc, 10_000) };
}

/** One request of the spamd protocol (what spamc speaks). */
function spamdRequest(port, verb, body, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`spamd ${verb}: no answer in ${timeoutMs / 1000}s`)));
    s.on('connect', () => {
      const head = `${verb} SPAMC/1.5\r\n${body ? `Content-length: ${body.length}\r\n` : ''}\r\n`;
      s.end(body ? Buffer.concat([Buffer.from(head), body]) : head);
    });
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => {
      const all = Buffer.concat(chunks).toString('latin1');
      const i = all.indexOf('\r\n\r\n');
      resolve({ head: i >= 0 ? all.slice(0, i) : all, body: i >= 0 ? all.slice(i + 4) : '' });
    });
  });
}

/**
 * Scans one message with spamd's SYMBOLS verb (what `spamc -y` does), which answers the score,
 * the threshold, spamd's spam decision (score ≥ required_score) and the names of the rules hit.
 */
export async function spamdCheck(port, raw) {
  const r = await spamdRequest(port, 'SYMBOLS', raw);
  const m = /^Spam: (True|False|Yes|No) ; (-?[\d.]+) \/ (-?[\d.]+)/mi.exec(r.head);
  if (!m) throw new Error(`spamd: unexpected answer: ${r.head.slice(0, 200)}`);
  return {
    score: Number(m[2]), threshold: Number(m[3]), spam: /^(true|yes)$/i.test(m[1]),
    symbols: r.body.trim() ? r.body.trim().split(',') : [],
  };
}

/** The native client: `spamc -c` (prints "score/threshold", exit 1 when spam). */
export function spamcCheck(port, raw) {
  return new Promise((resolve, reject) => {
    const child = spawn('spamc', ['-d', '127.0.0.1', '-p', String(port), '-c', '-t', '120'], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.on('close', (code) => {
      const m = /^(-?[\d.]+)\/(-?[\d.]+)/.exec(out);
      if (!m) reject(new Error(`spamc exited ${code} with "${out.trim()}"`));
      else resolve({ score: Number(m[1]), spam: code === 1 });
    });
    child.stdin.end(raw);
  });
}

// ---------------------------------------------------------------------------------------------
// Redis and rspamd

export async function startRedis({ dir, log }) {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = startProcess('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no'], { log });
  await waitPort(port, { proc, timeoutMs: 30_000 });
  return { port, proc, pid: proc.pid, stop: () => stopProcess(proc) };
}

/**
 * Modules turned off: everything that asks the network (DNS lists, SPF/DKIM/DMARC/ARC, ASN, fuzzy
 * storage, MX checks, URL redirect following, external scanners, rule updates) and the
 * modules that learn from traffic (neural, reputation, ratelimit, greylist) — the same "network
 * tests off, Bayes only as trained" footing as SpamAssassin with -L. hfilter is off because its
 * tests are about the connecting host (HELO and hostname resolved in DNS), which scanned files
 * do not carry. multimap is off as in the peers notes (some of its stock maps are remote).
 */
export const RSPAMD_DISABLED = ['rbl', 'surbl', 'spf', 'dkim', 'dmarc', 'arc', 'asn', 'fuzzy_check', 'multimap',
  'neural', 'ratelimit', 'greylist', 'reputation', 'mx_check', 'hfilter', 'emails', 'dcc', 'url_redirector',
  'external_services', 'antivirus', 'rspamd_update', 'p0f', 'bimi', 'spamtrap', 'metadata_exporter',
  'clickhouse', 'elastic', 'metric_exporter', 'history_redis', 'dkim_signing', 'arc_signing'];

/**
 * rspamd with the stock configuration (/etc/rspamd) and our overrides in `dir`: normal workers
 * (`workers`, sized for the cores) and the controller on free loopback ports, no proxy, Redis for
 * the Bayes, the NXDOMAIN DNS server as its only resolver.
 */
export async function startRspamd({ dir, redisPort, dnsPort, workers = 2, log, bayes = true, hsCacheDir }) {
  const conf = path.join(dir, 'conf');
  if (hsCacheDir) fs.mkdirSync(hsCacheDir, { recursive: true });
  for (const d of ['conf/local.d', 'conf/override.d', 'db', 'run', 'log']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const port = await freePort();
  const controllerPort = await freePort();
  const w = (f, s) => fs.writeFileSync(path.join(conf, f), s + '\n');
  for (const m of RSPAMD_DISABLED) w(`override.d/${m}.conf`, 'enabled = false;');
  w('override.d/worker-normal.inc', `bind_socket = "127.0.0.1:${port}";\ncount = ${workers};`);
  w('override.d/worker-controller.inc', `bind_socket = "127.0.0.1:${controllerPort}";\ncount = 1;`);
  w('override.d/worker-proxy.inc', 'enabled = false;');
  w('override.d/worker-fuzzy.inc', 'enabled = false;\ncount = -1;');
  // The compiled Hyperscan databases can be shared between runs (they depend on the rules only):
  // compiling them takes ~20 s on this machine, longer than a fold's scanning.
  const hs = hsCacheDir ? `hs_cache_dir = "${hsCacheDir}/";\n` : '';
  w('local.d/options.inc', `${hs}dns {\n  nameserver = ["127.0.0.1:${dnsPort}"];\n  timeout = 1s;\n  retransmits = 1;\n}`);
  w('override.d/logging.inc', `type = "file";\nfilename = "${path.join(dir, 'log', 'rspamd.log')}";\nlevel = "warning";`);
  if (redisPort) w('local.d/redis.conf', `servers = "127.0.0.1:${redisPort}";`);
  // The learning set is given explicitly: no autolearn from scanned (test) messages.
  w('local.d/classifier-bayes.conf', bayes && redisPort
    ? `servers = "127.0.0.1:${redisPort}";\nautolearn = false;`
    : 'autolearn = false;');
  const args = ['-f', '-c', '/etc/rspamd/rspamd.conf', '--var', `LOCAL_CONFDIR=${conf}`, '--var', `DBDIR=${path.join(dir, 'db')}`,
    '--var', `RUNDIR=${path.join(dir, 'run')}`, '--var', `LOGDIR=${path.join(dir, 'log')}`];
  if (process.getuid?.() === 0) {
    args.push('-u', '_rspamd', '-g', '_rspamd');
    spawnSync('chown', ['-R', '_rspamd:_rspamd', dir, ...(hsCacheDir ? [hsCacheDir] : [])]);
  }
  const proc = startProcess('/usr/bin/rspamd', args, { log });
  await waitPort(port, { proc, timeoutMs: 120_000 });
  await waitPort(controllerPort, { proc, timeoutMs: 60_000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const self = {
    port, controllerPort, proc, pid: proc.pid, agent,
    stop: async () => { agent.destroy(); await stopProcess(proc, 10_000); },
    log: path.join(dir, 'log', 'rspamd.log'),
  };
  // The normal worker may accept connections before its Lua is loaded: wait for a real answer.
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await rspamdCheck(self, Buffer.from('Subject: ping\n\nping\n'));
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`rspamd does not scan: ${e.message}; ${tail(self.log)}`);
      await sleep(300);
    }
  }
  return self;
}

/** Scans one message through the normal worker's /checkv2 (what rspamc does). */
export async function rspamdCheck(rspamd, raw) {
  const r = await httpRequest(rspamd.agent, rspamd.port, 'POST', '/checkv2', {}, raw);
  if (r.status !== 200) throw new Error(`rspamd /checkv2: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  const j = JSON.parse(r.body);
  if (j.error) throw new Error(`rspamd /checkv2: ${j.error}`);
  return { score: j.score, required: j.required_score, action: j.action, symbols: Object.keys(j.symbols ?? {}) };
}

/**
 * Learns one message through the controller (/learnspam, /learnham: what `rspamc learn_spam`
 * does) with `Learn-Type: bulk`, so that rspamd learns every message rather than skipping those
 * its Bayes already classifies confidently. Resolves { ok, error }.
 */
export async function rspamdLearn(rspamd, raw, cls) {
  const r = await httpRequest(rspamd.agent, rspamd.controllerPort, 'POST', cls === 'spam' ? '/learnspam' : '/learnham', { 'Learn-Type': 'bulk' }, raw);
  if (r.status === 200) return { ok: true };
  let error = r.body;
  try { error = JSON.parse(r.body).error ?? r.body; } catch { /* not JSON */ }
  return { ok: false, status: r.status, error: String(error).slice(0, 200) };
}

/** The Bayes learn counts rspamd keeps in Redis (from the controller's /stat). */
export async function rspamdStat(rspamd) {
  const r = await httpRequest(rspamd.agent, rspamd.controllerPort, 'GET', '/stat', {}, null);
  try {
    const j = JSON.parse(r.body);
    return Object.fromEntries((j.statfiles ?? []).map((s) => [s.symbol, s.revision]));
  } catch { return null; }
}
