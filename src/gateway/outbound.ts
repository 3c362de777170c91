// The gateway's side of outbound locks and the hold queue: the control commands behind
// `portcullis queue hold|release` and `portcullis user unlock`, and the lock alert handed to the
// queue like any mail of ours (docs/outbound.md "Limits and holds").
import net from 'node:net';
import type { Queue, Destination } from '../queue/queue.js';
import type { RecipientResolver } from '../smtp/recipients.js';
import { parseMailboxPath } from '../smtp/address.js';
import type { ControlRequest } from '../control/socket.js';
import type { OutboundGuard, Subject } from '../pipeline/outbound/limits.js';
import { selects, type HoldSelector } from '../queue/hold.js';

/** Queues the lock alert: local delivery for postmaster@ (through roles.mailbox) and local users, else relayed. */
export async function queueAlert(queue: Queue, resolver: RecipientResolver, to: string, message: Buffer, id: string): Promise<void> {
  const res = resolver.resolve(parseMailboxPath(to), { authenticated: true, trusted: true });
  if (res.kind === 'reject') throw new Error(`the alert address ${to} is refused: ${res.reply.text}`);
  const recipients: { address: string; destination: Destination }[] = res.kind === 'relay'
    ? [{ address: res.address, destination: { kind: 'relay', domain: res.domain } }]
    : [
      ...res.mailboxes.map((m) => ({ address: m, destination: { kind: 'local', mailbox: m, folder: 'INBOX' } as Destination })),
      ...res.external.map((e) => ({ address: e, destination: { kind: 'relay', domain: e.slice(e.lastIndexOf('@') + 1) } as Destination })),
    ];
  await queue.commit({ id, sender: '', recipients, meta: { origin: 'account-lock' }, inline: [message], size: message.length, authenticated: false });
}

/** Reads `{ id } | { user } | { client }` from a control request; exactly one. */
function selectorOf(args: Record<string, unknown> | undefined): HoldSelector {
  const given = (['id', 'user', 'client'] as const).filter((k) => typeof args?.[k] === 'string' && args[k] !== '');
  if (given.length !== 1) throw new Error('name exactly one of: a queue ID, --user USER, --client IP');
  const k = given[0]!;
  const v = String(args![k]);
  return k === 'id' ? { id: v } : k === 'user' ? { user: v.toLowerCase() } : { client: v };
}

function subjectOf(who: unknown): Subject {
  if (typeof who !== 'string' || !who) throw new Error('name the user (or client address) to unlock');
  if (net.isIP(who)) return { ip: who };
  if (!/^[^@\s]+@[^@\s]+$/.test(who)) throw new Error(`${JSON.stringify(who)} is neither a user address nor an IP address`);
  return { user: who.toLowerCase() };
}

export async function outboundControl(req: ControlRequest, queue: Queue, guard: OutboundGuard): Promise<unknown> {
  switch (req.cmd) {
    case 'queue.hold': {
      const sel = selectorOf(req.args);
      if ('id' in sel && !queue.get(sel.id)) throw new Error(`no message ${sel.id} in the queue`);
      const ids = await queue.holdWhere((m) => selects(sel, m), 'held by the administrator');
      guard.countHeld('admin', ids.length);
      return { held: ids };
    }
    case 'queue.release': {
      const sel = selectorOf(req.args);
      if ('id' in sel && !queue.get(sel.id)) throw new Error(`no message ${sel.id} in the queue`);
      return { released: await queue.releaseWhere((m) => selects(sel, m)) };
    }
    case 'user.unlock': {
      const s = subjectOf(req.args?.user);
      return { unlocked: await guard.unlock(s), subject: 'user' in s ? s.user : s.ip };
    }
    case 'user.locks': return { locks: await guard.locks() };
    default: throw new Error(`unknown command ${req.cmd}`);
  }
}
