#!/usr/bin/env node
// SMTP load generator for the benchmark: N concurrent sessions share a budget of M messages.
// Each session sends many messages back to back (no RSET between successful transactions),
// pipelines MAIL/RCPT/DATA when the server advertises PIPELINING, and can use STARTTLS or
// implicit TLS. Plain JavaScript, no dependencies, so it runs the same against every target.
//
//   node bench/loadgen.mjs --port 2525 --sessions 10 --messages 2000 \
//     --messages-dir .bench/corpus/set --rcpt bench@bench.test [--tls starttls|implicit|none] [--auth USER:PASSWORD]
//
// Prints one JSON object on stdout:
//   { messages, accepted, seconds, msgs_per_sec, errors, replies: { "250": n, ... }, ... }
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '25' },
    sessions: { type: 'string', default: '10' },
    messages: { type: 'string', default: '1000' },
    'messages-dir': { type: 'string' },
    'message-file': { type: 'string' },
    'message-size': { type: 'string', default: '5120' },
    from: { type: 'string', default: 'loadgen@loadgen.test' },
    rcpt: { type: 'string', multiple: true },
    helo: { type: 'string', default: 'loadgen.test' },
    tls: { type: 'string', default: 'none' }, // none | starttls | implicit
    auth: { type: 'string' }, // USER:PASSWORD: AUTH PLAIN once per session, after TLS (submission)
    pipelining: { type: 'string', default: 'auto' }, // auto | off
    'per-session': { type: 'string', default: '0' }, // 0 = unlimited messages per connection
    timeout: { type: 'string', default: '60' }, // seconds per reply
    'max-reconnects': { type: 'string', default: '3' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (opt.help) {
  process.stdout.write(fs.readFileSync(new URL(import.meta.url)).toString().split('\n')
    .filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(0);
}

const port = Number(opt.port);
const sessions = Math.max(1, Number(opt.sessions));
const total = Math.max(0, Number(opt.messages));
const perSession = Number(opt['per-session']);
const replyTimeoutMs = Number(opt.timeout) * 1000;
const maxReconnects = Number(opt['max-reconnects']);
const rcpts = opt.rcpt && opt.rcpt.length ? opt.rcpt : ['bench@bench.test'];
if (!['none', 'starttls', 'implicit'].includes(opt.tls)) fail(`--tls must be none, starttls or implicit`);

// ---------- message set: normalised to CRLF and dot-stuffed once, before the clock starts ----------

/** CRLF-normalise, dot-stuff, and append the end-of-data marker. */
function toWire(raw) {
  let s = raw.toString('latin1'); // byte-preserving
  s = s.replace(/\r\n|\r|\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  if (s.startsWith('.')) s = '.' + s;
  s = s.replace(/\r\n\./g, '\r\n..');
  return Buffer.from(s + '.\r\n', 'latin1');
}

function loadMessages() {
  const out = [];
  if (opt['messages-dir']) {
    const dir = opt['messages-dir'];
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.eml')).sort()) {
      out.push(fs.readFileSync(path.join(dir, f)));
    }
  } else if (opt['message-file']) {
    out.push(fs.readFileSync(opt['message-file']));
  } else {
    out.push(generatedMessage(Number(opt['message-size'])));
  }
  if (out.length === 0) fail('no messages found');
  return out.map((raw) => ({ wire: toWire(raw), eightBit: raw.some((b) => b > 127), bytes: raw.length }));
}

/** A fixed, plain-ASCII message of about `size` bytes (headers included). */
function generatedMessage(size) {
  const head = 'From: Load Generator <loadgen@loadgen.test>\r\nTo: <bench@bench.test>\r\n' +
    'Subject: portcullis benchmark message\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n' +
    'Message-ID: <bench-fixed@loadgen.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n';
  const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n';
  let body = '';
  while (head.length + body.length + line.length <= size) body += line;
  return Buffer.from(head + body, 'latin1');
}

function fail(msg) {
  process.stderr.write(`loadgen: ${msg}\n`);
  process.exit(2);
}

// ---------- SMTP client connection with a reply reader ----------

class SmtpConn {
  constructor(socket) {
    this.socket = socket;
    this.buf = '';
    this.lines = []; // lines of the reply being assembled
    this.replies = []; // complete replies not yet claimed
    this.waiters = []; // { resolve, reject, timer }
    this.closed = false;
    this.attach(socket);
  }

  attach(socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    this.onData = (chunk) => this.feed(chunk);
    this.onClose = () => this.abort(new Error('connection closed by server'));
    this.onError = (err) => this.abort(err);
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  detach() {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
  }

  feed(chunk) {
    this.buf += chunk;
    let i;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      this.lines.push(line);
      if (line.length < 4 || line[3] !== '-') {
        const code = Number(line.slice(0, 3)) || 0;
        const reply = { code, lines: this.lines.map((l) => l.slice(4)), text: this.lines.join('\n') };
        this.lines = [];
        const w = this.waiters.shift();
        if (w) { clearTimeout(w.timer); w.resolve(reply); } else this.replies.push(reply);
      }
    }
  }

  /** The next reply from the server (in order). */
  read() {
    if (this.replies.length) return Promise.resolve(this.replies.shift());
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const w = { resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        const idx = this.waiters.indexOf(w);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`timeout waiting for a reply (${replyTimeoutMs / 1000}s)`));
        this.socket.destroy();
      }, replyTimeoutMs);
      this.waiters.push(w);
    });
  }

  write(data) { this.socket.write(data); }

  abort(err) {
    if (this.closed) return;
    this.closed = err;
    for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(err); }
  }

  /** Upgrade the connection in place with STARTTLS (after the 220 reply). */
  async startTls() {
    this.detach();
    const raw = this.socket;
    const secure = await new Promise((resolve, reject) => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, servername: undefined }, () => resolve(s));
      s.once('error', reject);
    });
    this.buf = '';
    this.attach(secure);
    raw.setNoDelay(true);
  }

  close() { this.socket.destroy(); }
}

function connect() {
  return new Promise((resolve, reject) => {
    const onErr = (err) => reject(err);
    let s;
    if (opt.tls === 'implicit') {
      s = tls.connect({ host: opt.host, port, rejectUnauthorized: false }, () => { s.off('error', onErr); resolve(s); });
    } else {
      s = net.connect({ host: opt.host, port, noDelay: true }, () => { s.off('error', onErr); resolve(s); });
    }
    s.setNoDelay(true);
    s.once('error', onErr);
  });
}

function parseEhlo(reply) {
  const ext = new Set();
  for (const l of reply.lines.slice(1)) ext.add(l.split(/\s+/)[0].toUpperCase());
  return ext;
}

// ---------- the run ----------

const messages = loadMessages();
let next = 0; // next message index to claim
let accepted = 0;
let failed = 0; // messages that did not get a 2xx (rejected or lost)
let errors = 0; // protocol or connection errors (a session had to stop or reconnect)
const replies = {}; // final reply code per message → count
const stageReplies = {}; // non-success replies by stage, e.g. "RCPT 550"
const errorSamples = [];
const latencies = [];
let bytesSent = 0;
let tlsSessions = 0;
let pipelinedSessions = 0;

const count = (h, k) => { h[k] = (h[k] || 0) + 1; };
const noteError = (err) => {
  errors++;
  if (errorSamples.length < 5) errorSamples.push(String(err && err.message ? err.message : err));
};
const expect = (reply, ok, stage) => {
  if (reply.code >= ok && reply.code < ok + 100) return true;
  count(stageReplies, `${stage} ${reply.code}`);
  if (errorSamples.length < 5) errorSamples.push(`${stage}: ${reply.text.slice(0, 200)}`);
  return false;
};

function claim() {
  if (next >= total) return -1;
  return next++;
}

/** One connection: greet, optionally STARTTLS, then send messages until the budget is spent. */
async function runConnection(firstIdx) {
  let idx = firstIdx;
  const conn = new SmtpConn(await connect());
  try {
    const greet = await conn.read();
    if (!expect(greet, 200, 'CONNECT')) throw new Error(`greeting refused: ${greet.text}`);
    conn.write(`EHLO ${opt.helo}\r\n`);
    let ehlo = await conn.read();
    if (!expect(ehlo, 200, 'EHLO')) throw new Error(`EHLO refused: ${ehlo.text}`);
    let ext = parseEhlo(ehlo);
    if (opt.tls === 'starttls') {
      if (!ext.has('STARTTLS')) throw new Error('STARTTLS not advertised');
      conn.write('STARTTLS\r\n');
      const r = await conn.read();
      if (!expect(r, 200, 'STARTTLS')) throw new Error(`STARTTLS refused: ${r.text}`);
      await conn.startTls();
      conn.write(`EHLO ${opt.helo}\r\n`);
      ehlo = await conn.read();
      if (!expect(ehlo, 200, 'EHLO')) throw new Error(`EHLO after STARTTLS refused: ${ehlo.text}`);
      ext = parseEhlo(ehlo);
    }
    if (opt.auth) {
      const colon = opt.auth.indexOf(':');
      conn.write(`AUTH PLAIN ${Buffer.from(`\0${opt.auth.slice(0, colon)}\0${opt.auth.slice(colon + 1)}`).toString('base64')}\r\n`);
      const a = await conn.read();
      if (!expect(a, 200, 'AUTH')) throw new Error(`AUTH refused: ${a.text}`);
    }
    if (opt.tls !== 'none') tlsSessions++;
    const pipelining = opt.pipelining !== 'off' && ext.has('PIPELINING');
    if (pipelining) pipelinedSessions++;
    const eightBitMime = ext.has('8BITMIME');
    let sent = 0;
    while (idx >= 0) {
      const msg = messages[idx % messages.length];
      const t0 = process.hrtime.bigint();
      const mail = `MAIL FROM:<${opt.from}>${msg.eightBit && eightBitMime ? ' BODY=8BITMIME' : ''}\r\n`;
      const rcptCmds = rcpts.map((r) => `RCPT TO:<${r}>\r\n`);
      let final;
      if (pipelining) {
        conn.write(mail + rcptCmds.join('') + 'DATA\r\n');
        const mr = await conn.read();
        const rrs = [];
        for (let i = 0; i < rcptCmds.length; i++) rrs.push(await conn.read());
        const dr = await conn.read();
        const mailOk = expect(mr, 200, 'MAIL');
        const anyRcpt = rrs.map((r) => expect(r, 200, 'RCPT')).some(Boolean);
        if (dr.code === 354) {
          conn.write(msg.wire);
          bytesSent += msg.wire.length;
          final = await conn.read();
        } else {
          expect(dr, 300, 'DATA');
          final = !mailOk ? mr : !anyRcpt ? rrs[0] : dr;
          conn.write('RSET\r\n');
          await conn.read();
        }
      } else {
        conn.write(mail);
        const mr = await conn.read();
        if (!expect(mr, 200, 'MAIL')) {
          final = mr;
        } else {
          let anyRcpt = false;
          let firstBad = null;
          for (const c of rcptCmds) {
            conn.write(c);
            const rr = await conn.read();
            if (expect(rr, 200, 'RCPT')) anyRcpt = true; else firstBad ??= rr;
          }
          if (!anyRcpt) {
            final = firstBad;
          } else {
            conn.write('DATA\r\n');
            const dr = await conn.read();
            if (expect(dr, 300, 'DATA')) {
              conn.write(msg.wire);
              bytesSent += msg.wire.length;
              final = await conn.read();
            } else final = dr;
          }
        }
        if (final.code >= 400) { conn.write('RSET\r\n'); await conn.read(); }
      }
      count(replies, String(final.code));
      if (final.code >= 200 && final.code < 300) {
        accepted++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } else {
        failed++;
        expect(final, 200, 'END');
      }
      sent++;
      if (final.code === 421) { idx = -1; break; }
      if (perSession > 0 && sent >= perSession) break;
      idx = claim();
    }
    conn.write('QUIT\r\n');
    let quitTimer;
    await Promise.race([conn.read().catch(() => {}), new Promise((r) => { quitTimer = setTimeout(r, 2000); })]);
    clearTimeout(quitTimer);
    return idx < 0 ? -1 : null; // null: budget left, caller opens a new connection
  } catch (err) {
    // A message in flight when the connection broke counts as failed (not retried: an SMTP
    // client cannot know whether the server kept it).
    if (idx >= 0) { failed++; count(replies, 'lost'); }
    throw err;
  } finally {
    conn.close();
  }
}

async function session() {
  let reconnects = 0;
  for (;;) {
    const idx = claim();
    if (idx < 0) return;
    try {
      const r = await runConnection(idx);
      if (r === -1) return;
    } catch (err) {
      noteError(err);
      if (++reconnects > maxReconnects) return;
    }
  }
}

const cpu0 = process.cpuUsage();
const startedAt = performance.timeOrigin + performance.now(); // wall clock (ms), comparable across processes
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: sessions }, () => session()));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const attempted = accepted + failed;

latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? +latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(2) : null);
const cpuMs = (cpu.user + cpu.system) / 1000;
const result = {
  target: `${opt.host}:${port}`,
  tls: opt.tls,
  sessions,
  messages: attempted,
  requested: total,
  accepted,
  failed,
  seconds: +seconds.toFixed(3),
  started_at: +startedAt.toFixed(1),
  msgs_per_sec: +(accepted / seconds).toFixed(1),
  errors,
  replies,
  stage_replies: stageReplies,
  error_samples: errorSamples,
  latency_ms: { p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: latencies.length ? +latencies[latencies.length - 1].toFixed(2) : null },
  pipelined_sessions: pipelinedSessions,
  tls_sessions: tlsSessions,
  message_set: { count: messages.length, mean_bytes: Math.round(messages.reduce((a, m) => a + m.bytes, 0) / messages.length) },
  bytes_sent: bytesSent,
  cpu_ms: +cpuMs.toFixed(1),
  cpu_ms_per_msg: attempted ? +(cpuMs / attempted).toFixed(3) : null,
};
process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
