// Junk training for every user (docs/console.md): the recent messages of their own Junk folder,
// each with "Not spam" (moved to INBOX, learnt as ham), and of their INBOX, each with "Spam"
// (moved to Junk, learnt as spam). The move and the training are src/mailbox/junk-move.ts, the
// same code IMAP MOVE runs, so the console teaches exactly what a mail client's move would.
// The folders are the session user's (mailboxPath of the logged-in address): a UID from another
// user's folder names nothing here. The form carries the folder's UIDVALIDITY too, so a UID is
// never applied to a folder whose UIDs were renumbered since the page was made.
import fs from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mailboxPath } from '../auth/accounts.js';
import { folderDir } from '../mailbox/folder-names.js';
import { ensureFolder, folderExists } from '../mailbox/maildir-folders.js';
import type { FolderIndex, MessageRecord } from '../mailbox/maildir-index.js';
import { MaildirRegistry } from '../mailbox/maildir-registry.js';
import { moveMessages } from '../mailbox/junk-move.js';
import { decodeHeaderWords, headerText } from '../mime/filenames.js';
import { html } from './html.js';
import { csrfField } from './layout.js';
import type { ConsoleContext } from './context.js';

/** How many messages of each folder the page shows (newest first). */
const SHOWN = 50;
/** How much of a message is read for its header fields. */
const HEAD_BYTES = 16 * 1024;

interface Summary {
  readonly uid: number;
  readonly date: string;
  readonly from: string;
  readonly subject: string;
}

/** From, Subject and Date of a stored message, decoded (RFC 2047), from its first bytes. */
async function summarise(index: FolderIndex, rec: MessageRecord): Promise<Summary> {
  let head = '';
  try {
    const fh = await fs.open(index.filePath(rec), 'r');
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
      head = buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    // Moved or expunged by another client since the scan: shown without its fields.
  }
  const end = head.search(/\r?\n\r?\n/);
  const unfolded = (end >= 0 ? head.slice(0, end) : head).replace(/\r?\n[ \t]+/g, ' ');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(unfolded);
    return m ? decodeHeaderWords(headerText(m[1]!.trim())).slice(0, 300) : '';
  };
  return { uid: rec.uid, date: new Date(rec.mtime).toISOString().replace('T', ' ').slice(0, 16), from: field('From'), subject: field('Subject') };
}

export function registerJunkPages(app: FastifyInstance, ctx: ConsoleContext, junk: NonNullable<ConsoleContext['junk']>): void {
  // The console's own view of the folders; the IMAP server's sessions see the changes through
  // the folder's uid list and their watchers (maildir-index.ts is safe across indexes).
  const registry = new MaildirRegistry();
  const rootOf = (user: string) => mailboxPath(junk.dataDir, user);

  async function folder(user: string, name: string): Promise<{ validity: number; rows: Summary[] }> {
    const root = rootOf(user);
    if (!(await folderExists(root, name))) return { validity: 0, rows: [] };
    const index = registry.acquire(folderDir(root, name));
    try {
      await index.sync();
      const recent = index.messages.slice(-SHOWN).reverse();
      return { validity: index.uidValidity, rows: await Promise.all(recent.map((r) => summarise(index, r))) };
    } finally {
      registry.release(index);
    }
  }

  type Notice = { kind: 'ok' | 'error'; text: string };
  const junkPage = async (req: FastifyRequest, reply: FastifyReply, user: string, notice?: Notice, status = 200) => {
    const s = req.consoleSession;
    const [spam, inbox] = await Promise.all([folder(user, 'Junk'), folder(user, 'INBOX')]);
    const table = (id: string, f: { validity: number; rows: Summary[] }, action: string, label: string, cls: string) => f.rows.length
      ? html`<table class="trace" id="${id}"><thead><tr><th>Received (UTC)</th><th>From</th><th>Subject</th><th></th></tr></thead><tbody>
${f.rows.map((m) => html`<tr><td>${m.date}</td><td>${m.from}</td><td>${m.subject}</td>
<td><form method="post" action="${action}" class="inline">${csrfField(s)}<input type="hidden" name="uid" value="${m.uid}"><input type="hidden" name="v" value="${f.validity}"><button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form></td></tr>`)}
</tbody></table>` : html`<p class="muted">No messages.</p>`;
    return ctx.render(req, reply, { title: 'Junk', notice }, html`
<p>Moving a message out of Junk or into it teaches the spam filter what you think of such mail, as moving it in your mail program does.</p>
<h2>In your Junk folder (the newest ${SHOWN})</h2>
${table('junk', spam, '/junk/not-spam', 'Not spam: move to INBOX', '')}
<h2>In your INBOX (the newest ${SHOWN})</h2>
${table('inbox', inbox, '/junk/spam', 'Spam: move to Junk', 'danger')}`, status);
  };

  const move = async (req: FastifyRequest, reply: FastifyReply, from: 'Junk' | 'INBOX', to: 'Junk' | 'INBOX') => {
    const user = ctx.user(req, reply);
    if (!user) return;
    const body = req.body as Record<string, unknown>;
    const uid = Number(body.uid);
    const validity = Number(body.v);
    if (!Number.isSafeInteger(uid) || uid < 1 || !Number.isSafeInteger(validity)) return junkPage(req, reply, user, { kind: 'error', text: 'The form did not name a message.' }, 400);
    const root = rootOf(user);
    if (!(await folderExists(root, from))) return junkPage(req, reply, user, { kind: 'error', text: `You have no ${from} folder.` }, 404);
    const index = registry.acquire(folderDir(root, from));
    let current: number;
    try {
      await index.sync();
      current = index.uidValidity;
    } finally {
      registry.release(index);
    }
    if (current !== validity) return junkPage(req, reply, user, { kind: 'error', text: `Your ${from} folder changed since the page was made; here it is again.` }, 409);
    await ensureFolder(root, to);
    const moved = await moveMessages({ registry, root, user, from, to, uids: [uid], hook: junk.onJunkTrain, log: ctx.log });
    if (!moved.length) return junkPage(req, reply, user, { kind: 'error', text: `That message is no longer in ${from}.` }, 404);
    ctx.log.info({ event: 'console_junk_move', user, from, to, uid }, 'message moved from the console');
    const learnt = junk.onJunkTrain ? (to === 'INBOX' ? ' and learnt as not spam' : ' and learnt as spam') : ' (the spam filter does not learn: Bayes is off)';
    return junkPage(req, reply, user, { kind: 'ok', text: `Moved to ${to}${learnt}.` });
  };

  app.get('/junk', (req, reply) => {
    const user = ctx.user(req, reply);
    if (user) return junkPage(req, reply, user);
  });
  app.post('/junk/not-spam', (req, reply) => move(req, reply, 'Junk', 'INBOX'));
  app.post('/junk/spam', (req, reply) => move(req, reply, 'INBOX', 'Junk'));
}
