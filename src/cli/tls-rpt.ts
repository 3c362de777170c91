// `portcullis tls-rpt send [--date YYYY-MM-DD] [--json]`: asks the running gateway to send the
// TLS-RPT reports of a UTC day now (default: yesterday), instead of waiting for its hourly round
// (docs/outbound-tls.md "TLS-RPT"). The gateway sends them, since report mail goes through its
// queue; a day's domain already reported is not sent again.
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { callControl } from '../control/socket.js';

export const TLS_RPT_USAGE = `usage: portcullis tls-rpt send [--date YYYY-MM-DD] [--json] [--config FILE]

Sends the TLS-RPT (RFC 8460) reports of one UTC day (default yesterday) to the domains that
publish a _smtp._tls record, through the running gateway. Exit status: 0 nothing failed,
1 a report could not be delivered (or the gateway is not running), 2 usage error.`;

interface Outcome {
  domain: string;
  status: string;
  destinations: string[];
}

export async function tlsRptCommand(args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { date: { type: 'string' }, json: { type: 'boolean' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${TLS_RPT_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'send') {
    console.error(TLS_RPT_USAGE);
    return 2;
  }
  const outcomes = await sendNow<Outcome>(cfg, 'tls-rpt.send', values.date, TLS_RPT_USAGE);
  if (!outcomes) return outcomes === null ? 2 : 1;
  if (values.json) console.log(JSON.stringify(outcomes, null, 2));
  else if (outcomes.length === 0) console.log('no TLS attempts recorded for that day');
  else {
    for (const o of outcomes) {
      console.log(`${o.domain.padEnd(40)} ${o.status}`);
      for (const d of o.destinations) console.log(`  ${d}`);
    }
  }
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

/**
 * Asks the running gateway to send one UTC day's reports now (`tls-rpt send`, `reports
 * send-dmarc`): the outcomes; null after a usage error (bad --date), undefined after any other
 * failure (both already printed).
 */
export async function sendNow<T>(cfg: Config, cmd: string, date: string | undefined, usage: string): Promise<T[] | null | undefined> {
  if (date !== undefined && (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)))) {
    console.error(`--date: "${date}" is not a date of the form YYYY-MM-DD\n${usage}`);
    return null;
  }
  const reply = await callControl(cfg.data_dir, { cmd, args: date ? { date } : {} }, 120_000);
  if (!reply) {
    console.error(`the gateway is not running (no control socket under ${cfg.data_dir}); reports are sent by the running gateway`);
    return undefined;
  }
  if (!reply.ok) {
    console.error(reply.error ?? 'the gateway refused the request');
    return undefined;
  }
  return reply.result as T[];
}
