// `portcullis list …`: the mailing lists of a running gateway, through its control socket
// (docs/lists.md). The gateway is the one writer of lists.db and the one that can send the
// confirmation requests, so every sub-command needs it running. There is no command that
// makes an address a confirmed member: `subscribe` and `import` send confirmation requests.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/schema.js';
import { callControl } from '../control/socket.js';

export const LIST_USAGE = `usage: portcullis list create LIST [KEY=VALUE...]   KEY: description, owners, moderators (comma-separated),
                                                   reply_to=sender|list, content=plain|keep, posting=members|owners
       portcullis list set LIST KEY=VALUE...
       portcullis list delete LIST
       portcullis list show [LIST] [--json]
       portcullis list members LIST [--json]          the roster (administrators only: nobody else sees it)
       portcullis list subscribe LIST ADDRESS...      sends confirmation requests; members once they answer
       portcullis list import LIST FILE|-             the same for one address a line (# comments)
       portcullis list unsubscribe LIST ADDRESS...
       portcullis list held LIST [--json]             posts held for moderation
       portcullis list approve|discard LIST ID`;

async function ask(cfg: Config, cmd: string, args: Record<string, unknown>): Promise<unknown> {
  const r = await callControl(cfg.data_dir, { cmd: `list.${cmd}`, args });
  if (!r) throw new Error('the gateway is not running (lists are changed, and confirmation requests sent, by the running gateway: start it first)');
  if (!r.ok) throw new Error(r.error ?? 'the gateway refused the request');
  return r.result;
}

function usage(msg?: string): number {
  console.error(msg ? `${msg}\n${LIST_USAGE}` : LIST_USAGE);
  return 2;
}

function readAddresses(file: string): string[] {
  const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  return text.split(/\r?\n/).map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

interface Shown { address: string; description: string; owners: string[]; moderators: string[]; reply_to: string; content: string; posting: string; members: Record<string, number>; held: number }

function describe(l: Shown): string {
  return [
    `${l.address}${l.description ? `  (${l.description})` : ''}`,
    `  owners: ${l.owners.join(', ') || '-'}   moderators: ${l.moderators.join(', ') || '-'}`,
    `  reply_to=${l.reply_to} content=${l.content} posting=${l.posting}`,
    `  members: ${l.members.confirmed} confirmed, ${l.members.pending} pending, ${l.members.disabled} disabled; held posts: ${l.held}`,
  ].join('\n');
}

/** Returns the exit status (2: usage). */
export async function listCommand(args: string[], cfg: Config): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [sub, list, ...rest] = positionals;
  const json = (v: unknown) => console.log(JSON.stringify(v, null, 2));
  switch (sub) {
    case 'create': case 'set': {
      if (!list || (sub === 'set' && !rest.length)) return usage();
      const l = (await ask(cfg, sub, { list, settings: rest })) as Shown;
      if (values.json) json(l);
      else console.log(describe(l));
      return 0;
    }
    case 'delete':
      if (!list || rest.length) return usage();
      await ask(cfg, 'delete', { list });
      console.log(`deleted ${list}`);
      return 0;
    case 'show': {
      if (rest.length) return usage();
      const r = await ask(cfg, 'show', list ? { list } : {});
      if (values.json) json(r);
      else if (Array.isArray(r)) console.log(r.length ? (r as Shown[]).map(describe).join('\n') : 'no lists');
      else console.log(describe(r as Shown));
      return 0;
    }
    case 'members': {
      if (!list || rest.length) return usage();
      const r = (await ask(cfg, 'members', { list })) as { address: string; state: string; bounces: number; added: string }[];
      if (values.json) json(r);
      else if (!r.length) console.log('no members');
      else for (const m of r) console.log(`${m.address.padEnd(40)} ${m.state.padEnd(10)} bounces ${m.bounces}  since ${m.added}`);
      return 0;
    }
    case 'subscribe': case 'import': {
      if (!list || !rest.length || (sub === 'import' && rest.length !== 1)) return usage();
      let addresses: string[];
      try {
        addresses = sub === 'import' ? readAddresses(rest[0]!) : rest;
      } catch (err) {
        console.error(`list import: ${(err as Error).message}`);
        return 1;
      }
      if (!addresses.length) return usage('no address given');
      const r = (await ask(cfg, sub, { list, addresses })) as { invited: string[]; skipped: { address: string; reason: string }[] };
      if (values.json) json(r);
      else {
        for (const a of r.invited) console.log(`${a}: confirmation request sent (a member once the address answers)`);
        for (const s of r.skipped) console.log(`${s.address}: skipped: ${s.reason}`);
      }
      return r.invited.length || !r.skipped.length ? 0 : 1;
    }
    case 'unsubscribe': {
      if (!list || !rest.length) return usage();
      const r = (await ask(cfg, 'unsubscribe', { list, addresses: rest })) as { removed: string[] };
      if (values.json) json(r);
      else console.log(`removed ${r.removed.length} of ${rest.length} address(es)${r.removed.length ? `: ${r.removed.join(', ')}` : ''}`);
      return 0;
    }
    case 'held': {
      if (!list || rest.length) return usage();
      const r = (await ask(cfg, 'held', { list })) as { id: number; from: string; sender: string; subject: string; reason: string; at: string }[];
      if (values.json) json(r);
      else if (!r.length) console.log('no held posts');
      else for (const h of r) console.log(`${String(h.id).padStart(5)}  ${h.at}  ${h.from || h.sender || '<>'}  ${JSON.stringify(h.subject)}  (${h.reason})`);
      return 0;
    }
    case 'approve': case 'discard': {
      const id = Number(rest[0]);
      if (!list || rest.length !== 1 || !Number.isInteger(id) || id < 1) return usage();
      const r = (await ask(cfg, sub, { list, id })) as { id: number; copies?: number };
      console.log(sub === 'approve' ? `post ${r.id} sent to ${r.copies ?? 0} member(s)` : `post ${r.id} discarded`);
      return 0;
    }
    default:
      return usage(sub ? `unknown list command "${sub}"` : undefined);
  }
}
