// `portcullis complaints list|show` and `portcullis reports list|show`: what the gateway read
// from the reports others sent about our mail (docs/deliverability.md). They read reports.db
// directly (WAL: safe beside a running gateway).
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { ReportsStore, reportsFile } from '../reports/store.js';
import type { DmarcSendOutcome } from '../reports/dmarc-out.js';
import { sendNow } from './tls-rpt.js';

export const COMPLAINTS_USAGE = `usage: portcullis complaints list [--user USER] [--since 7d] [--limit N] [--json]
       portcullis complaints show ID [--json]

Complaint reports (ARF feedback loops, forwarded originals) received at the report addresses,
newest first, with the local user each was traced to. Exit status: 0, 1 no such complaint, 2 usage.`;

export const REPORTS_USAGE = `usage: portcullis reports list [--kind dmarc|tlsrpt|unparsed] [--limit N] [--json]
       portcullis reports show ID [--json]
       portcullis reports send-dmarc [--date YYYY-MM-DD] [--json]

DMARC aggregate and TLS-RPT reports received at the report addresses, and the reports that could
not be read (with the reason). Exit status: 0, 1 no such report, 2 usage.`;

function open(cfg: Config): ReportsStore | undefined {
  const file = reportsFile(cfg.data_dir);
  return fs.existsSync(file) ? ReportsStore.open(file) : undefined;
}

interface Parsed {
  readonly positionals: string[];
  readonly values: { json?: boolean; limit?: string; user?: string; since?: string; kind?: string };
}

function parse(args: string[], usage: string, extra: Record<string, { type: 'string' }>): Parsed | undefined {
  try {
    return parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, limit: { type: 'string' }, ...extra } }) as Parsed;
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return undefined;
  }
}

function limitOf(v: string | undefined, usage: string): number | undefined | null {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    console.error(`--limit: "${v}" is not a whole number between 1 and 100000\n${usage}`);
    return null;
  }
  return n;
}

export async function complaintsCommand(args: string[], cfg: Config): Promise<number> {
  const p = parse(args, COMPLAINTS_USAGE, { user: { type: 'string' }, since: { type: 'string' } });
  if (!p) return 2;
  const [sub, id, ...more] = p.positionals;
  const limit = limitOf(p.values.limit, COMPLAINTS_USAGE);
  if (limit === null || more.length || !(sub === 'list' && id === undefined) && !(sub === 'show' && id !== undefined)) {
    if (limit !== null) console.error(COMPLAINTS_USAGE);
    return 2;
  }
  let since: number | undefined;
  if (p.values.since !== undefined) {
    const ms = parseDuration(p.values.since);
    if (ms === undefined) {
      console.error(`--since: "${p.values.since}" is not a duration (e.g. 12h, 7d)\n${COMPLAINTS_USAGE}`);
      return 2;
    }
    since = Date.now() - ms;
  }
  const store = open(cfg);
  try {
    if (sub === 'show') {
      const c = store?.complaint(Number(id));
      if (!c || !/^\d+$/.test(id!)) {
        console.error(`no complaint ${id}`);
        return 1;
      }
      console.log(JSON.stringify(c, null, 2));
      return 0;
    }
    const rows = store?.complaints({ user: p.values.user, since, limit }) ?? [];
    if (p.values.json) console.log(JSON.stringify(rows, null, 2));
    else if (!rows.length) console.log('no complaints');
    else {
      for (const c of rows) {
        const who = c.list ? `list ${c.list}, member ${c.member ?? '?'} (by ${c.listBy ?? '?'})`
          : c.user ? `${c.user} (by ${c.attributedBy})` : '(not traced to a local user)';
        console.log(`${String(c.id).padStart(5)}  ${c.at}  ${c.feedbackType.padEnd(9)} ${(c.reporterDomain || c.reporter).padEnd(24)}${c.verified ? '' : ' (unverified)'}  ${who}  ${c.messageId ? `<${c.messageId}>` : ''}`);
      }
    }
    return 0;
  } finally {
    store?.close();
  }
}

export async function reportsCommand(args: string[], cfg: Config): Promise<number> {
  if (args[0] === 'send-dmarc') return sendDmarc(args.slice(1), cfg);
  const p = parse(args, REPORTS_USAGE, { kind: { type: 'string' } });
  if (!p) return 2;
  const [sub, id, ...more] = p.positionals;
  const limit = limitOf(p.values.limit, REPORTS_USAGE);
  const kind = p.values.kind;
  if (kind !== undefined && kind !== 'dmarc' && kind !== 'tlsrpt' && kind !== 'unparsed') {
    console.error(`--kind: "${kind}" is not one of dmarc, tlsrpt, unparsed\n${REPORTS_USAGE}`);
    return 2;
  }
  if (limit === null || more.length || !(sub === 'list' && id === undefined) && !(sub === 'show' && id !== undefined)) {
    if (limit !== null) console.error(REPORTS_USAGE);
    return 2;
  }
  const store = open(cfg);
  try {
    if (sub === 'show') {
      const r = /^\d+$/.test(id!) ? store?.report(Number(id)) : undefined;
      if (!r) {
        console.error(`no report ${id}`);
        return 1;
      }
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    const rows = store?.reports({ kind, limit }) ?? [];
    if (p.values.json) console.log(JSON.stringify(rows, null, 2));
    else if (!rows.length) console.log('no reports');
    else {
      for (const r of rows) {
        if (r.kind === 'unparsed') console.log(`    -  ${r.at}  unparsed  ${r.reporter}  ${r.reason}`);
        else console.log(`${String(r.id).padStart(5)}  ${r.at}  ${r.kind.padEnd(8)}  ${r.org.padEnd(24)} ${r.domain}  ${r.messages} ${r.kind === 'dmarc' ? 'messages' : 'sessions'}, ${r.failed} failed${r.verified ? '' : ' (unverified)'}`);
      }
    }
    return 0;
  } finally {
    store?.close();
  }
}

export const SEND_DMARC_USAGE = `usage: portcullis reports send-dmarc [--date YYYY-MM-DD] [--json]

Sends the DMARC aggregate reports of one UTC day (default yesterday) to the domains whose mail
was received and whose DMARC record asks for them (rua=), through the running gateway
(reports.dmarc_out must be enabled). A domain's day is reported once. Exit status: 0 nothing
failed, 1 a report could not be queued (or the gateway is not running), 2 usage error.`;

async function sendDmarc(args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: false, options: { date: { type: 'string' }, json: { type: 'boolean' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${SEND_DMARC_USAGE}`);
    return 2;
  }
  const outcomes = await sendNow<DmarcSendOutcome>(cfg, 'dmarc.send', parsed.values.date, SEND_DMARC_USAGE);
  if (!outcomes) return outcomes === null ? 2 : 1;
  if (parsed.values.json) console.log(JSON.stringify(outcomes, null, 2));
  else if (!outcomes.length) console.log('no DMARC evaluations recorded for that day');
  else {
    for (const o of outcomes) {
      console.log(`${o.domain.padEnd(40)} ${o.status}`);
      for (const d of o.destinations) console.log(`  ${d}`);
    }
  }
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}
