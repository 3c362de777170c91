// Process plumbing for the benchmark: start and stop servers, wait for ports, read CPU time
// from /proc, run the load generators. Plain JavaScript, no dependencies.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Every process this benchmark started and has not yet seen exit, by pid. */
const live = new Map();

export function killAll() {
  for (const pid of live.keys()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    live.delete(pid);
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killAll(); process.exit(130); });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.timeOrigin + performance.now();

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start a long-running process. Its stdout and stderr go to `log` (a file path); `onStdout`,
 * when given, also sees stdout chunks.
 */
export function startProcess(cmd, args, { log, env, cwd, onStdout } = {}) {
  const out = fs.openSync(log, 'a');
  const child = spawn(cmd, args, {
    cwd, env: { ...process.env, ...env },
    stdio: ['ignore', onStdout ? 'pipe' : out, out],
  });
  if (onStdout) child.stdout.on('data', (c) => { onStdout(c); fs.writeSync(out, c); });
  const proc = { cmd, child, pid: child.pid, log, exitCode: null, signal: null };
  live.set(child.pid, proc);
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exitCode = code; proc.signal = signal; live.delete(child.pid);
      try { fs.closeSync(out); } catch { /* closed */ }
      resolve({ code, signal });
    });
    child.on('error', (err) => { proc.spawnError = err; live.delete(child.pid); resolve({ code: -1, signal: null }); });
  });
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(proc, graceMs = 5000) {
  if (!proc || proc.exitCode !== null || proc.signal || proc.spawnError) return;
  try { process.kill(proc.pid, 'SIGTERM'); } catch { return; }
  const done = await Promise.race([proc.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
    await proc.exited;
  }
}

export function tail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch { return ''; }
}

/** Wait until something accepts connections on host:port, or the process exits, or time runs out. */
export async function waitPort(port, { host = '127.0.0.1', proc, timeoutMs = 30000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signal || proc.spawnError)) {
      throw new Error(`${path.basename(proc.cmd)} exited (${proc.spawnError ? proc.spawnError.message : `code ${proc.exitCode}, signal ${proc.signal}`}) before listening on ${port}` +
        (proc.log ? `; last log lines:\n${tail(proc.log)}` : ''));
    }
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host, port }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs / 1000}s`);
    await sleep(100);
  }
}

/** CPU ticks (utime+stime) of `pid` and all its live descendants, plus the reaped children of `pid`. */
export function treeTicks(pid) {
  const stats = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(d), { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) });
    } catch { /* exited meanwhile */ }
  }
  const root = stats.get(pid);
  if (!root) return null;
  let total = root.self + root.reaped;
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const [c, st] of stats) if (st.ppid === p) { total += st.self; queue.push(c); }
  }
  return total;
}

export const ticksToMs = (t) => (t * 1000) / CLK_TCK;

/** Run bench/loadgen.mjs and return its JSON result (with `started_at` on this clock). */
export function runLoadgen(args, { log } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, 'loadgen.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const started = now();
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => {
      if (log) fs.appendFileSync(log, `$ loadgen ${args.join(' ')}\n${out}${err}\n`);
      const line = out.trim().split('\n').pop();
      try {
        const r = JSON.parse(line);
        r.spawned_at = started;
        r.ended_at = now();
        resolve(r);
      } catch {
        reject(new Error(`loadgen failed (exit ${code}): ${(err || out).slice(-500)}`));
      }
    });
  });
}

/** Run a command under bash and get its wall time and the CPU time of its children (bash `times`). */
export function runTimed(cmdline, { log } = {}) {
  return new Promise((resolve) => {
    const t0 = now();
    const child = spawn('bash', ['-c', `${cmdline}\nrc=$?\ntimes\nexit $rc`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => {
      const seconds = (now() - t0) / 1000;
      if (log) fs.appendFileSync(log, `$ ${cmdline}\n${out}${err}\n`);
      const lines = out.trim().split('\n');
      const toS = (s) => { const m = /^(\d+)m([\d.]+)s$/.exec(s); return m ? Number(m[1]) * 60 + Number(m[2]) : 0; };
      const childTimes = (lines.pop() || '').trim().split(/\s+/);
      const cpuSeconds = toS(childTimes[0]) + toS(childTimes[1] || '0m0s');
      resolve({ code, seconds, cpuSeconds, stdout: lines.join('\n'), stderr: err });
    });
  });
}

/**
 * Postfix's smtp-sink on 127.0.0.1:port with running counters (-c); `count()` is the number of
 * messages it has received ("." seen) so far.
 */
export async function startSmtpSink(port, { log }) {
  let received = 0;
  let tailBuf = '';
  const listeners = new Set();
  const args = ['-c', `127.0.0.1:${port}`, '1024'];
  if (process.getuid && process.getuid() === 0) args.unshift('-u', 'nobody');
  args.unshift('-m', '1000');
  const proc = startProcess('/usr/sbin/smtp-sink', args, {
    log,
    onStdout: (c) => {
      const s = tailBuf + c.toString('latin1');
      const all = [...s.matchAll(/mesg=(\d+)/g)];
      if (all.length) {
        const n = Number(all[all.length - 1][1]);
        if (n !== received) { received = n; for (const fn of listeners) fn(); }
      }
      tailBuf = s.slice(-64);
    },
  });
  await waitPort(port, { proc, timeoutMs: 10000 });
  proc.count = () => received;
  proc.subscribe = (fn) => { listeners.add(fn); return () => listeners.delete(fn); };
  return proc;
}
