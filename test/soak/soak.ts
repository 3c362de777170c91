// The soak: mixed load on every listener of a real gateway for a set time while the faults of
// test/faults/ are injected in turn, and a ledger of every message a client saw acknowledged
// ("250 2.0.0 Ok: queued as ID") checked against what was delivered or held. Run by
// `npm run soak` (scripts/soak.mjs: --duration, --out) and, for 2 minutes, by
// test/soak/soak.test.ts inside `npm test`. docs/reliability.md has the figures.
//
// Load: MX senders (several loopback source addresses, to the local Maildir, to the relay
// route, or both), submission senders (AUTH PLAIN as a local user, over implicit TLS on
// submissions and STARTTLS on submission), IMAP and POP3 readers (over TLS) on a mailbox of
// their own. Every message carries a unique token and its body's SHA-256 (checkCopy in
// test/crash/load.ts); delivered copies are checked and removed (as a user's client would) so
// the Maildir tmpfs never fills by itself.
//
// Faults, in turn, each for `faultMs` with `calmMs` between (needs root for the tmpfs and the
// real clamd): queue disk full, queue out of inodes, Maildir full, clamd SIGKILLed (and started
// again), the relay resetting mid-DATA, DNS slow, DNS silent, the gateway SIGKILLed and restarted.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startClamd, CLAMD, type Clamd } from '../helpers/clamd.js';
import { plainToken } from '../helpers/fixtures.js';
import { prepareGateway, type Gateway } from '../helpers/gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { Sink } from '../helpers/sink.js';
import { SmtpClient, queuedId } from '../helpers/smtp-client.js';
import { sleep } from '../helpers/wait.js';
import { checkCopy } from '../crash/load.js';
import { mountTmpfs, type Tmpfs } from '../faults/tmpfs.js';
import { ResetProxy } from '../faults/reset-proxy.js';
import { SlowDns } from '../faults/slow-dns.js';
import { pop3Read } from './pop3-reader.js';
import { testMessage } from './messages.js';

export const FAULTS = ['queue_disk_full', 'queue_inodes', 'maildir_full', 'clamd_killed', 'relay_reset', 'dns_slow', 'dns_silent', 'gateway_killed'] as const;
export type Fault = (typeof FAULTS)[number];

export interface SoakOptions {
  readonly durationMs: number;
  /** MX sender loops (default 4); submission senders are half as many (at least 1). */
  readonly clients?: number;
  /** How long each fault lasts, and the calm after it. */
  readonly faultMs?: number;
  readonly calmMs?: number;
  /** After the load: how long to wait for the queue to drain. */
  readonly drainMs?: number;
  readonly log?: (line: string) => void;
}

export interface SoakReport {
  readonly duration_s: number;
  readonly drain_s: number;
  readonly connections: Record<string, number>;
  readonly messages: {
    readonly attempted: number;
    readonly acked: number;
    readonly refused: number;
    readonly in_doubt: number;
    readonly in_doubt_delivered: number;
    readonly copies_expected: number;
    readonly copies_delivered: number;
    readonly duplicates: number;
    readonly held: number;
  };
  readonly refusals: Record<string, number>;
  readonly reads: { readonly imap: number; readonly pop3: number; readonly failed: number };
  readonly faults: Record<Fault, number>;
  readonly lost: number;
  readonly lost_tokens: string[];
  readonly corrupt: number;
  readonly unexpected: number;
  readonly queue_left: number;
  readonly gateway_restarts: number;
}

/** Why the soak cannot run here (root for the tmpfs, clamd), or undefined. */
export function soakProblem(): string | undefined {
  if (process.getuid?.() !== 0) return 'the soak needs root (it mounts tmpfs file systems for the disk-full faults)';
  if (!fs.existsSync(CLAMD)) return `the soak needs clamd (${CLAMD}; apt-get install clamav-daemon)`;
  return undefined;
}

type Target = 'local' | 'relay';
const LOCAL = 'alice@example.test';
const RELAY = 'rcpt@relay.test';
const SUBMITTER = { address: 'bob@example.test', password: 'Hn4$kP8s-Qd2vYc6' };
const READER = { address: 'carol@second.test', password: 'Zt5&wB3j-Mf7nRe1' };
const MX_SENDER = 'loader@sender.test';
const ADDRESS: Record<Target, string> = { local: LOCAL, relay: RELAY };

interface Sent {
  readonly token: string;
  readonly to: readonly Target[];
  readonly sha: string;
  outcome: 'acked' | 'refused' | 'in-doubt';
  queueId?: string;
}

/** Message sizes: mostly small, some past queue.memory_spill (spilled to queue/large/). */
const bodySize = () => (crypto.randomInt(5) === 0 ? 70_000 + crypto.randomInt(200_000) : 500 + crypto.randomInt(8_000));
const pickTargets = (): Target[] => {
  const k = crypto.randomInt(4);
  return k === 0 ? ['local', 'relay'] : k === 1 ? ['relay'] : ['local'];
};

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => undefined);
  const faultMs = o.faultMs ?? 5_000;
  const calmMs = o.calmMs ?? 5_000;
  const mxClients = o.clients ?? 4;
  const subClients = Math.max(1, Math.floor(mxClients / 2));
  const problem = soakProblem();
  if (problem) throw new Error(problem);

  const ledger = new Map<string, Sent>();
  const copies = new Map<string, Record<Target, number>>();
  const connections: Record<string, number> = { mx: 0, submission: 0, submissions: 0, imaps: 0, pop3s: 0 };
  const refusals: Record<string, number> = {};
  const reads = { imap: 0, pop3: 0, failed: 0 };
  const faults = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>;
  let corrupt = 0;
  let unexpected = 0;
  let restarts = 0;
  const problems: string[] = [];

  // ---- the world around the gateway
  const sink = await Sink.start();
  const proxy = await ResetProxy.start(sink.port);
  const senders = Array.from({ length: mxClients }, (_, k) => `127.0.0.${60 + k}`);
  const zone: Record<string, { type: 'PTR' | 'A' | 'TXT'; data: string }[]> = {
    'sender.test': [{ type: 'TXT', data: 'v=spf1 ip4:127.0.0.0/8 -all' }],
    '_dmarc.sender.test': [{ type: 'TXT', data: 'v=DMARC1; p=none' }],
  };
  senders.forEach((ip, k) => {
    zone[`${ip.split('.').reverse().join('.')}.in-addr.arpa`] = [{ type: 'PTR', data: `mta${k}.sender.test` }];
    zone[`mta${k}.sender.test`] = [{ type: 'A', data: ip }];
  });
  const dnsServer: DnsServer = await startDnsServer(zone as never);
  const dns = await SlowDns.start(dnsServer.port);
  let clamd: Clamd = await startClamd();
  const linkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-soak-clamd-'));
  const clamdLink = path.join(linkDir, 'clamd.sock');
  fs.symlinkSync(clamd.socket, clamdLink);

  const gw: Gateway = await prepareGateway({
    users: { [LOCAL]: 'Vq7#rT2m-Lx9pWz4', [SUBMITTER.address]: SUBMITTER.password, [READER.address]: READER.password },
    config: {
      smtp: { max_message_size: '1MiB' },
      queue: { retry_initial: '1s', retry_max: '2s', memory_spill: '64KiB', segment_size: '1MiB', min_free_inodes: 16 },
      antivirus: { enabled: true, clamd: clamdLink, timeout: '5s' },
      dns: { servers: [`127.0.0.1:${dns.port}`], timeout: '1s', attempts: 1 },
      dnsbl: { lists: [{ zone: 'bl.test', weight: 2 }] },
      outbound: { limits: { enabled: false } },
      relay: {
        trusted_networks: [],
        domains: [{ domain: 'relay.test' }],
        routes: [{ domain: 'relay.test', host: '127.0.0.1', port: proxy.port, protocol: 'smtp', tls: 'none' }],
      },
      log: { level: 'info' },
    },
  });
  const queueFs: Tmpfs = await mountTmpfs(path.join(gw.dataDir, 'queue'), '24m', 2048);
  const mailFs: Tmpfs = await mountTmpfs(path.join(gw.dataDir, 'mail'), '48m', 8192);
  const cleanup = async () => {
    await gw.stop().catch(() => gw.kill());
    await queueFs.unmount();
    await mailFs.unmount();
    await gw.cleanup();
    await clamd.stop().catch(() => undefined);
    fs.rmSync(linkDir, { recursive: true, force: true });
    dns.close();
    await dnsServer.close();
    await proxy.close();
    await sink.close();
  };

  try {
    await gw.start(60_000);
    const started = Date.now();
    const deadline = started + o.durationMs;
    let loadOn = true;

    // ---- the ledger's eyes: delivered copies, checked and removed
    const box = gw.mailboxDir(LOCAL);
    const folders = ['new', 'cur', '.Junk/new', '.Junk/cur'].map((f) => path.join(box, f));
    const seen = (raw: Buffer, where: Target) => {
      const c = checkCopy(raw);
      if (!c.token) return;
      const s = ledger.get(c.token);
      if (!s) {
        unexpected++;
        problems.push(`unknown token ${c.token} at ${where}`);
        return;
      }
      if (!c.intact) {
        corrupt++;
        problems.push(`${c.token} at ${where}: ${c.problem}`);
      }
      if (!s.to.includes(where)) {
        unexpected++;
        problems.push(`${c.token} delivered to ${where}, addressed to ${s.to.join('+')}`);
      }
      const n = copies.get(c.token) ?? { local: 0, relay: 0 };
      n[where]++;
      copies.set(c.token, n);
    };
    const collect = () => {
      for (const dir of folders) {
        let names: string[] = [];
        try {
          names = fs.readdirSync(dir);
        } catch {
          continue;
        }
        for (const name of names) {
          const file = path.join(dir, name);
          try {
            seen(fs.readFileSync(file), 'local');
            fs.unlinkSync(file);
          } catch {
            // moved (new/ → cur/) meanwhile: found at the next pass
          }
        }
      }
      for (const m of sink.messages.splice(0)) seen(m.raw, 'relay');
    };
    const collector = setInterval(collect, 500);

    // ---- senders
    const transaction = async (c: SmtpClient, from: string) => {
      const to = pickTargets();
      const m = testMessage(from, to.map((t) => ADDRESS[t]), bodySize());
      const mail = await c.cmd(`MAIL FROM:<${from}>`, 30_000);
      if (mail.code !== 250) {
        bump(refusals, `MAIL ${mail.code} ${mail.enhanced ?? ''}`.trim());
        await c.cmd('RSET', 10_000).catch(() => undefined);
        // A real client backs off after a 4xx rather than asking again at once.
        await sleep(250);
        return mail.code;
      }
      for (const t of to) {
        const r = await c.cmd(`RCPT TO:<${ADDRESS[t]}>`, 30_000);
        if (r.code !== 250) {
          bump(refusals, `RCPT ${r.code} ${r.enhanced ?? ''}`.trim());
          await c.cmd('RSET', 10_000).catch(() => undefined);
          return r.code;
        }
      }
      const d = await c.cmd('DATA', 30_000);
      if (d.code !== 354) {
        bump(refusals, `DATA command ${d.code} ${d.enhanced ?? ''}`.trim());
        return d.code;
      }
      const sent: Sent = { token: m.token, to, sha: m.sha, outcome: 'in-doubt' };
      ledger.set(m.token, sent);
      c.write(m.wire);
      const final = await c.readReply(60_000);
      if (final.code === 250) {
        sent.outcome = 'acked';
        sent.queueId = queuedId(final);
      } else {
        sent.outcome = 'refused';
        bump(refusals, `DATA ${final.code} ${final.enhanced ?? ''}`.trim());
      }
      return final.code;
    };
    const mxLoop = async (k: number) => {
      while (loadOn) {
        let c: SmtpClient | undefined;
        try {
          c = await SmtpClient.connect(gw.ports.mx, { localAddress: senders[k], timeoutMs: 10_000 });
          bump(connections, 'mx');
          if (c.greeting?.code !== 220) throw new Error('no 220');
          await c.ehlo(`mta${k}.sender.test`);
          for (let n = 0; n < 3 && loadOn; n++) await transaction(c, MX_SENDER);
          await c.quit();
        } catch {
          c?.close();
          await sleep(200);
        }
      }
    };
    const subLoop = async (k: number) => {
      while (loadOn) {
        let c: SmtpClient | undefined;
        const implicit = k % 2 === 0;
        try {
          c = await SmtpClient.connect(implicit ? gw.ports.submissions : gw.ports.submission, { implicitTls: implicit, timeoutMs: 10_000 });
          bump(connections, implicit ? 'submissions' : 'submission');
          await c.ehlo('laptop.example.test');
          if (!implicit) {
            const st = await c.startTls();
            if (st.code !== 220) throw new Error('no STARTTLS');
            await c.ehlo('laptop.example.test');
          }
          const a = await c.cmd(`AUTH PLAIN ${plainToken(SUBMITTER.address, SUBMITTER.password)}`, 30_000);
          if (a.code !== 235) throw new Error(`AUTH ${a.raw}`);
          for (let n = 0; n < 3 && loadOn; n++) await transaction(c, SUBMITTER.address);
          await c.quit();
        } catch {
          c?.close();
          await sleep(200);
        }
      }
    };

    // ---- readers (their own mailbox, seeded once)
    for (let k = 0; k < 3; k++) {
      const c = await SmtpClient.connect(gw.ports.mx, { localAddress: senders[0] });
      await c.ehlo('mta0.sender.test');
      await c.cmd(`MAIL FROM:<${MX_SENDER}>`);
      await c.cmd(`RCPT TO:<${READER.address}>`);
      await c.cmd('DATA');
      c.write(Buffer.from(`Subject: reading material ${k}\r\nFrom: <${MX_SENDER}>\r\n\r\nSomething to read.\r\n.\r\n`));
      await c.readReply(30_000);
      await c.quit();
    }
    const imapLoop = async () => {
      while (loadOn) {
        const client = new ImapFlow({
          host: '127.0.0.1', port: gw.ports.imaps, secure: true, tls: { rejectUnauthorized: false },
          auth: { user: READER.address, pass: READER.password }, logger: false, connectionTimeout: 10_000, greetingTimeout: 10_000,
        });
        client.on('error', () => undefined);
        try {
          await client.connect();
          bump(connections, 'imaps');
          const mb = await client.mailboxOpen('INBOX');
          if (mb.exists > 0) await client.fetchOne('*', { envelope: true, source: true });
          await client.logout();
          reads.imap++;
        } catch {
          reads.failed++;
          client.close();
          await sleep(300);
        }
        await sleep(200);
      }
    };
    const pop3Loop = async () => {
      while (loadOn) {
        try {
          await pop3Read(gw.ports.pop3s, READER.address, READER.password);
          bump(connections, 'pop3s');
          reads.pop3++;
        } catch {
          reads.failed++;
          await sleep(300);
        }
        await sleep(200);
      }
    };

    // ---- faults
    let clamdGen = 0;
    const inject = async (f: Fault) => {
      faults[f]++;
      log(`soak: ${Math.round((Date.now() - started) / 1000)} s: ${f}`);
      switch (f) {
        case 'queue_disk_full':
          queueFs.fillSpace();
          await sleep(faultMs);
          queueFs.free();
          break;
        case 'queue_inodes':
          queueFs.fillInodes();
          await sleep(faultMs);
          queueFs.free();
          break;
        case 'maildir_full':
          mailFs.fillSpace();
          await sleep(faultMs);
          mailFs.free();
          break;
        case 'clamd_killed': {
          process.kill(clamd.pid, 'SIGKILL');
          await sleep(faultMs);
          const old = clamd;
          clamd = await startClamd();
          clamdGen++;
          fs.rmSync(clamdLink, { force: true });
          fs.symlinkSync(clamd.socket, clamdLink);
          await old.stop();
          break;
        }
        case 'relay_reset':
          proxy.afterBytes = 512 + crypto.randomInt(4096);
          proxy.mode = 'reset';
          await sleep(faultMs);
          proxy.mode = 'pass';
          break;
        case 'dns_slow':
          dns.delayMs = 600;
          await sleep(faultMs);
          dns.delayMs = 0;
          break;
        case 'dns_silent':
          dns.silent = true;
          await sleep(faultMs);
          dns.silent = false;
          break;
        case 'gateway_killed':
          await gw.kill();
          restarts++;
          await sleep(300);
          await gw.start(60_000);
          break;
      }
    };
    const loads = [
      ...senders.map((_, k) => mxLoop(k)),
      ...Array.from({ length: subClients }, (_, k) => subLoop(k)),
      imapLoop(), pop3Loop(),
    ];
    let next = 0;
    await sleep(Math.min(calmMs, Math.max(0, deadline - Date.now())));
    while (Date.now() + faultMs <= deadline) {
      await inject(FAULTS[next % FAULTS.length]!);
      next++;
      await sleep(Math.min(calmMs, Math.max(0, deadline - Date.now())));
    }
    while (Date.now() < deadline) await sleep(100);
    loadOn = false;
    await Promise.all(loads);
    const duration = (Date.now() - started) / 1000;
    log(`soak: load stopped after ${duration.toFixed(0)} s; draining (clamd generation ${clamdGen})`);

    // ---- drain: every acked copy delivered, or the queue holds only held messages
    const drainStart = Date.now();
    const drainMs = o.drainMs ?? 90_000;
    const missing = () => {
      const out: Sent[] = [];
      for (const s of ledger.values()) {
        if (s.outcome !== 'acked') continue;
        const n = copies.get(s.token);
        if (s.to.some((t) => !n || n[t] === 0)) out.push(s);
      }
      return out;
    };
    let queue = await gw.queueList().catch(() => []);
    while (Date.now() - drainStart < drainMs) {
      collect();
      queue = await gw.queueList().catch(() => queue);
      if (!missing().length && queue.every((e) => (e as { held?: unknown }).held)) break;
      await sleep(500);
    }
    await sleep(1_000);
    collect();
    clearInterval(collector);
    queue = await gw.queueList().catch(() => queue);
    const held = new Set(queue.filter((e) => (e as { held?: unknown }).held).map((e) => e.id));
    const lostList = missing().filter((s) => !(s.queueId && held.has(s.queueId)));
    const acked = [...ledger.values()].filter((s) => s.outcome === 'acked');
    let expected = 0;
    let delivered = 0;
    let duplicates = 0;
    for (const s of acked) {
      expected += s.to.length;
      const n = copies.get(s.token) ?? { local: 0, relay: 0 };
      for (const t of s.to) {
        delivered += n[t];
        if (n[t] > 1) duplicates += n[t] - 1;
      }
    }
    for (const s of ledger.values()) {
      if (s.outcome === 'refused' && copies.has(s.token)) {
        unexpected++;
        problems.push(`refused ${s.token} was delivered`);
      }
    }
    const doubt = [...ledger.values()].filter((s) => s.outcome === 'in-doubt');
    for (const p of problems.slice(0, 20)) log(`soak problem: ${p}`);
    return {
      duration_s: Math.round(duration),
      drain_s: Math.round((Date.now() - drainStart) / 1000),
      connections,
      messages: {
        attempted: ledger.size,
        acked: acked.length,
        // Refused at the end of data (in the ledger), and before it (MAIL, RCPT, the DATA command).
        refused: [...ledger.values()].filter((s) => s.outcome === 'refused').length
          + Object.entries(refusals).filter(([k]) => !/^DATA \d/.test(k)).reduce((a, [, v]) => a + v, 0),
        in_doubt: doubt.length,
        in_doubt_delivered: doubt.filter((s) => copies.has(s.token)).length,
        copies_expected: expected,
        copies_delivered: delivered,
        duplicates,
        held: held.size,
      },
      refusals,
      reads,
      faults,
      lost: lostList.length,
      lost_tokens: lostList.slice(0, 20).map((s) => `${s.token} (${s.queueId ?? '?'} → ${s.to.join('+')})`),
      corrupt,
      unexpected,
      queue_left: queue.length,
      gateway_restarts: restarts,
    };
  } finally {
    await cleanup();
  }
}

function bump(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
