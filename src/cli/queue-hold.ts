// `portcullis queue hold|release ID|--user USER|--client IP` and `portcullis user unlock
// USER|IP` / `user locks`: the hold queue and the outbound locks of a running gateway, through its
// control socket (docs/outbound.md "Limits and holds"). Both act on the running gateway only:
// the hold state must change where the queue is delivered from, and the locks are in its store.
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { callControl } from '../control/socket.js';

export const HOLD_USAGE = `usage: portcullis queue hold|release ID|--user USER|--client IP [--json]
       portcullis user unlock USER|IP [--json]
       portcullis user locks [--json]`;

async function ask(cfg: Config, cmd: string, args: Record<string, unknown>): Promise<unknown> {
  const r = await callControl(cfg.data_dir, { cmd, args });
  if (!r) throw new Error('the gateway is not running (holds and locks are changed in the running gateway: start it first)');
  if (!r.ok) throw new Error(r.error ?? 'the gateway refused the request');
  return r.result;
}

/** `queue hold|release`; returns the exit status (2: usage). */
export async function queueHoldCommand(sub: 'hold' | 'release', args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { user: { type: 'string' }, client: { type: 'string' }, json: { type: 'boolean' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${HOLD_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const chosen = [positionals.length ? 'id' : '', values.user ? 'user' : '', values.client ? 'client' : ''].filter(Boolean);
  if (chosen.length !== 1 || positionals.length > 1) {
    console.error(HOLD_USAGE);
    return 2;
  }
  const result = (await ask(cfg, `queue.${sub}`, { id: positionals[0], user: values.user, client: values.client })) as { held?: string[]; released?: string[] };
  const ids = (sub === 'hold' ? result.held : result.released) ?? [];
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    for (const id of ids) console.log(id);
    console.log(`${sub === 'hold' ? 'held' : 'released'} ${ids.length} message(s)`);
  }
  return 0;
}

/** `user unlock USER|IP` and `user locks`. */
export async function userLockCommand(sub: 'unlock' | 'locks', args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${HOLD_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (sub === 'locks') {
    if (positionals.length) return usage();
    const r = (await ask(cfg, 'user.locks', {})) as { locks: { subject: string; code: string; reason: string; since: string }[] };
    if (values.json) console.log(JSON.stringify(r.locks, null, 2));
    else if (!r.locks.length) console.log('no sender is locked');
    else for (const l of r.locks) console.log(`${l.subject.padEnd(40)} ${l.since}  ${l.code}: ${l.reason}`);
    return 0;
  }
  if (positionals.length !== 1) return usage();
  const r = (await ask(cfg, 'user.unlock', { user: positionals[0] })) as { unlocked: boolean; subject: string };
  if (values.json) console.log(JSON.stringify(r, null, 2));
  else console.log(r.unlocked ? `${r.subject} unlocked: new submissions are accepted again (held mail stays held until \`queue release\`)` : `${r.subject} was not locked (its counts were reset)`);
  return 0;
}

function usage(): number {
  console.error(HOLD_USAGE);
  return 2;
}
