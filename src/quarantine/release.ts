// Release: the ORIGINAL, byte-identical, goes back on its way. A local mailbox's copy is written
// straight into its INBOX (the same Maildir delivery as the queue's, fsynced); anything else —
// a relay domain, an alias's outside target — is handed to the queue as a new message, which
// then delivers (and retries) it like any other.
import type { MaildirDelivery } from '../delivery/maildir.js';
import type { Destination, NewMessage } from '../queue/queue.js';
import type { ReleaseOutcome, Releaser } from './types.js';

export interface ReleaserDeps {
  readonly maildir: MaildirDelivery;
  /** The Maildir of a local mailbox (src/auth/accounts.ts mailboxPath). */
  readonly mailboxDir: (address: string) => string;
  /** Whether an address is a local mailbox, for entries kept without a destination. */
  readonly isLocal: (address: string) => boolean;
  /** Hands a message to the queue (the running gateway's, or the CLI's under the lock). */
  readonly commit: (m: NewMessage) => Promise<unknown>;
  readonly newId: () => string;
}

export function createReleaser(deps: ReleaserDeps): Releaser {
  return async ({ item, recipients, size, original }) => {
    const outcomes: ReleaseOutcome[] = [];
    const relayed: { address: string; destination: Destination }[] = [];
    for (const r of recipients) {
      const d: Destination = r.destination ?? (deps.isLocal(r.address)
        ? { kind: 'local', mailbox: r.address, folder: 'INBOX' }
        : { kind: 'relay', domain: r.address.slice(r.address.lastIndexOf('@') + 1) });
      if (d.kind === 'relay') {
        relayed.push({ address: r.address, destination: d });
        continue;
      }
      try {
        // Released means wanted: INBOX, whatever folder the policy had chosen.
        const name = await deps.maildir.deliver(deps.mailboxDir(d.mailbox), 'INBOX', { size, stream: original });
        outcomes.push({ address: r.address, status: 'delivered', reply: `delivered to maildir INBOX as ${name}` });
      } catch (err) {
        outcomes.push({ address: r.address, status: 'failed', reply: `maildir: ${(err as Error).message}` });
      }
    }
    if (relayed.length) {
      const id = deps.newId();
      try {
        const chunks: Buffer[] = [];
        for await (const c of original()) chunks.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : (c as Buffer));
        const bytes = Buffer.concat(chunks);
        if (bytes.length !== size) throw new Error(`the original is ${bytes.length} bytes, the index says ${size}`);
        await deps.commit({
          id, sender: item.sender, recipients: relayed, meta: { origin: 'quarantine', quarantine_id: item.id }, inline: [bytes], size, authenticated: false,
        });
        for (const r of relayed) outcomes.push({ address: r.address, status: 'queued', reply: `queued as ${id}` });
      } catch (err) {
        for (const r of relayed) outcomes.push({ address: r.address, status: 'failed', reply: `queue: ${(err as Error).message}` });
      }
    }
    return outcomes;
  };
}

