// `portcullis quarantine list|show|release|delete|stats|digest`: through the running gateway's
// control socket when it runs, else on the store directly (like `queue`), under the gateway's
// lock for what writes (release, delete). docs/quarantine.md.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { callControl } from '../control/socket.js';
import { silentLogger } from '../log.js';
import { mailboxPath } from '../auth/accounts.js';
import { openAccountStore } from '../auth/accounts-open.js';
import { MaildirDelivery } from '../delivery/maildir.js';
import { Queue, type NewMessage } from '../queue/queue.js';
import { Quarantine, type QuarantineItem, type QuarantinePage, type ReleaseResult, type DeleteResult, type QuarantineStats } from '../quarantine/quarantine.js';
import { createReleaser } from '../quarantine/release.js';
import { QUARANTINE_COMMANDS, runQuarantineCommand } from '../quarantine/commands.js';
import { acquireLock, queueIdGenerator } from '../gateway/gateway.js';

export const QUARANTINE_USAGE = `usage: portcullis quarantine COMMAND [options] [--config FILE]

  list [--recipient A] [--reason R] [--state S] [--search TEXT] [--limit N] [--before CURSOR]
                            held messages, newest first (state: held, released, deleted;
                            default: all but deleted)
  show ID [--recipient A]   one entry with its symbols and the original's header fields
  release ID [--recipient A]
                            delivers the original, byte-identical: a local mailbox's INBOX,
                            anything else through the queue; every held recipient, or only A
  delete ID [--recipient A] forgets it (for A only, or for everyone: the original is removed)
  stats                     entries, bytes, per reason
  digest                    sends the due digests now (the running gateway only)
  --json                    machine-readable output`;

class Usage extends Error {}

export async function quarantineCommand(args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true,
      options: {
        json: { type: 'boolean' }, recipient: { type: 'string' }, reason: { type: 'string' }, state: { type: 'string' },
        search: { type: 'string' }, limit: { type: 'string' }, before: { type: 'string' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${QUARANTINE_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, id, ...extra] = positionals;
  try {
    if (!sub || !([...QUARANTINE_COMMANDS, 'digest'] as string[]).includes(sub) || extra.length) throw new Usage(QUARANTINE_USAGE);
    if (['show', 'release', 'delete'].includes(sub) && !id) throw new Usage(`usage: portcullis quarantine ${sub} ID [--recipient A]`);
    if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new Usage(`--limit: "${values.limit}" is not a number`);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const by = `cli:${os.userInfo().username}`;
  const req = {
    id, by, recipient: values.recipient, reason: values.reason, state: values.state, search: values.search,
    before: values.before, ...(values.limit !== undefined ? { limit: Number(values.limit) } : {}),
  };
  const online = await callControl(cfg.data_dir, { cmd: `quarantine.${sub}`, args: req }, 120_000);
  let result: unknown;
  if (online) {
    if (!online.ok) throw new Error(online.error ?? 'the gateway refused the request');
    result = online.result;
  } else {
    if (sub === 'digest') throw new Error('the gateway is not running; digests are sent by the running gateway');
    if (!cfg.quarantine.enabled) throw new Error('the quarantine is off (quarantine.enabled: false)');
    result = await offline(cfg, sub, req);
  }
  print(sub, result, !!values.json);
  if (sub === 'release' && (result as ReleaseResult).recipients.some((r) => r.status === 'failed')) return 1;
  return 0;
}

/** The store itself while no gateway runs; release and delete hold the gateway's lock meanwhile. */
async function offline(cfg: Config, sub: string, req: Record<string, unknown>): Promise<unknown> {
  const writes = sub === 'release' || sub === 'delete';
  const unlock = writes ? acquireLock(cfg.data_dir) : () => undefined;
  const accounts = writes ? await openAccountStore(cfg.store, cfg.data_dir, { requireConnection: true }) : undefined;
  let queue: Queue | undefined;
  const commit = async (m: NewMessage) => {
    queue ??= (await Queue.open({
      dir: path.join(cfg.data_dir, 'queue'), fsync: cfg.queue.fsync, segmentSize: cfg.queue.segment_size, concurrency: 1,
      retryInitial: cfg.queue.retry_initial, retryMax: cfg.queue.retry_max, lifetime: cfg.queue.lifetime, logger: silentLogger(),
    })).queue;
    return queue.commit(m);
  };
  const q = Quarantine.open({
    dataDir: cfg.data_dir, config: cfg.quarantine, logger: silentLogger(), fsync: cfg.queue.fsync, expireIntervalMs: 0, shared: cfg.store.backend === 'redis',
    releaser: createReleaser({
      maildir: new MaildirDelivery({ fsync: cfg.queue.fsync, hostname: cfg.hostname }),
      mailboxDir: (a) => mailboxPath(cfg.data_dir, a), isLocal: (a) => accounts?.hasUser(a) ?? false, commit, newId: queueIdGenerator(),
    }),
  });
  try {
    return await runQuarantineCommand(q, sub, req);
  } finally {
    q.close();
    await queue?.stop(0);
    accounts?.close();
    unlock();
  }
}

function print(sub: string, result: unknown, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const clean = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');
  switch (sub) {
    case 'list': {
      const page = result as QuarantinePage;
      if (!page.items.length) console.log('The quarantine holds nothing that matches');
      for (const m of page.items) {
        console.log(`${m.id}  ${m.time}  ${m.reason.padEnd(19)} ${m.state.padEnd(8)} ${String(m.size).padStart(8)}  <${clean(m.sender)}>  ${clean(m.subject)}`);
        for (const r of m.recipients) console.log(`    ${r.state.padEnd(8)} ${clean(r.address)}${r.by ? `  (${clean(r.by)} ${r.at})` : ''}`);
      }
      if (page.next) console.log(`-- more: --before ${page.next}`);
      break;
    }
    case 'show': {
      const m = result as QuarantineItem & { headers: { name: string; value: string }[] };
      console.log(`id:         ${m.id}\ntime:       ${m.time}\nreason:     ${m.reason}${m.detail ? ` (${clean(m.detail)})` : ''}\nstate:      ${m.state}`);
      console.log(`sender:     <${clean(m.sender)}>\nsubject:    ${clean(m.subject)}\nmessage-id: ${clean(m.messageId ?? '')}\nqueue id:   ${m.queueId ?? ''}\nsize:       ${m.size}\nscore:      ${m.score ?? ''}`);
      if (m.node) console.log(`held on:    node ${m.node}`);
      for (const r of m.recipients) console.log(`recipient:  ${clean(r.address)} ${r.state}${r.by ? ` by ${clean(r.by)} at ${r.at}` : ''}`);
      for (const s of m.symbols) console.log(`symbol:     ${s.name}${s.score !== undefined ? ` (${s.score})` : ''}  ${clean(s.reason)}`);
      console.log('--');
      for (const h of m.headers) console.log(`${clean(h.name)}: ${clean(h.value)}`);
      break;
    }
    case 'release':
      for (const r of (result as ReleaseResult).recipients) console.log(`${r.status.padEnd(9)} ${r.address}  ${clean(r.reply)}`);
      break;
    case 'delete':
      console.log(`deleted for ${(result as DeleteResult).recipients.join(', ') || 'nobody (already deleted)'}`);
      break;
    case 'stats': {
      const s = result as QuarantineStats;
      console.log(`${s.count} message(s), ${s.bytes} bytes`);
      for (const [k, v] of Object.entries(s.byReason)) console.log(`  ${k.padEnd(20)} ${v}`);
      break;
    }
    case 'digest':
      console.log(`sent ${(result as { sent: number }).sent} digest(s)`);
      break;
  }
}
