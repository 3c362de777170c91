// Commands of the authenticated state (RFC 3501 6.3): SELECT, EXAMINE, CREATE, DELETE, RENAME,
// SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND. Every mailbox name from the client goes
// through folder-names.ts before a path is built from it.
import fsp from 'node:fs/promises';
import { MailboxNameError, SEPARATOR, folderDir, newMailboxName, normalizeMailboxName, specialUseOf } from '../folder-names.js';
import { FolderError, createFolder, deleteFolder, folderExists, listFolders, readSubscriptions, renameFolder, setSubscribed } from '../maildir-folders.js';
import { applyFlags, systemFlag, writeDurably } from '../maildir-index.js';
import { toCrlf } from '../message-structure.js';
import { parseDateTime } from './fetch.js';
import { no, ok, type CommandSession, type Completion } from './command-context.js';
import { SyntaxError, asBytes, asList, asString, type ParsedCommand, type Token } from './tokens.js';

const PERMANENT = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';

export async function runMailboxCommand(s: CommandSession, cmd: ParsedCommand): Promise<Completion | undefined> {
  try {
    switch (cmd.name) {
      case 'SELECT': return await select(s, cmd, false);
      case 'EXAMINE': return await select(s, cmd, true);
      case 'CREATE': return await create(s, cmd);
      case 'DELETE': return await del(s, cmd);
      case 'RENAME': return await rename(s, cmd);
      case 'SUBSCRIBE': case 'UNSUBSCRIBE': return await subscribe(s, cmd);
      case 'LIST': case 'LSUB': return await list(s, cmd);
      case 'STATUS': return await status(s, cmd);
      case 'APPEND': return await append(s, cmd);
      default: return undefined;
    }
  } catch (err) {
    if (err instanceof MailboxNameError) return no(`Invalid mailbox name: ${err.message}`, 'CANNOT');
    if (err instanceof FolderError) return no(err.message, err.kind);
    throw err;
  }
}

function argCount(cmd: ParsedCommand, n: number, usage: string): void {
  if (cmd.args.length !== n) throw new SyntaxError(`expected ${usage}`);
}

/** A mailbox argument, normalised (throws MailboxNameError for unacceptable names). */
export function mailboxArg(t: Token | undefined): string {
  return normalizeMailboxName(asString(t, 'mailbox name'));
}

async function select(s: CommandSession, cmd: ParsedCommand, readOnly: boolean): Promise<Completion> {
  argCount(cmd, 1, 'a mailbox name');
  s.deselect();
  const name = mailboxArg(cmd.args[0]);
  if (!(await folderExists(s.root, name))) return no('Mailbox does not exist', 'NONEXISTENT');
  const index = s.services.registry.acquire(folderDir(s.root, name));
  try {
    await index.sync();
    if (!readOnly) await index.claimNew();
  } catch (err) {
    s.services.registry.release(index);
    throw err;
  }
  s.services.registry.watch(index);
  const sel = s.select(name, index, readOnly);
  s.send(`* FLAGS (${PERMANENT})`);
  s.send(`* OK [PERMANENTFLAGS (${readOnly ? '' : `${PERMANENT}`})] Flags permitted`);
  s.send(`* ${sel.uids.length} EXISTS`);
  s.send(`* ${sel.recent.size} RECENT`);
  const firstUnseen = sel.uids.findIndex((uid) => !index.get(uid)!.flags.includes('S'));
  if (firstUnseen >= 0) s.send(`* OK [UNSEEN ${firstUnseen + 1}] First unseen`);
  s.send(`* OK [UIDVALIDITY ${index.uidValidity}] UIDs valid`);
  s.send(`* OK [UIDNEXT ${index.uidNext}] Predicted next UID`);
  return ok(`${readOnly ? 'EXAMINE' : 'SELECT'} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

async function create(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  argCount(cmd, 1, 'a mailbox name');
  // A trailing separator only says "will have children" (RFC 3501 6.3.3).
  const raw = asString(cmd.args[0], 'mailbox name').replace(/\.$/, '');
  const name = newMailboxName(raw);
  if (name === 'INBOX') return no('INBOX already exists', 'ALREADYEXISTS');
  await createFolder(s.root, name);
  return ok('CREATE completed');
}

async function del(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  argCount(cmd, 1, 'a mailbox name');
  const name = mailboxArg(cmd.args[0]);
  if (s.selected?.name === name) s.deselect();
  await deleteFolder(s.root, name);
  return ok('DELETE completed');
}

async function rename(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  argCount(cmd, 2, 'two mailbox names');
  const from = mailboxArg(cmd.args[0]);
  const to = newMailboxName(asString(cmd.args[1], 'mailbox name'));
  if (to === 'INBOX') return no('Cannot rename to INBOX', 'ALREADYEXISTS');
  if (s.selected && (s.selected.name === from || s.selected.name.startsWith(from + SEPARATOR))) s.deselect();
  await renameFolder(s.root, from, to);
  return ok('RENAME completed');
}

async function subscribe(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  argCount(cmd, 1, 'a mailbox name');
  const name = mailboxArg(cmd.args[0]);
  const on = cmd.name === 'SUBSCRIBE';
  if (on && !(await folderExists(s.root, name))) return no('Mailbox does not exist', 'NONEXISTENT');
  await setSubscribed(s.root, name, on);
  return ok(`${cmd.name} completed`);
}

/** LIST / LSUB patterns: "*" matches anything, "%" anything but the separator. */
function patternRegex(pattern: string): RegExp {
  let re = '';
  for (const c of pattern) {
    if (c === '*') re += '.*';
    else if (c === '%') re += '[^.]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

function quoteName(name: string): string {
  return `"${name.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

async function list(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  let args = cmd.args;
  // Tolerate the RFC 5258 forms clients send to servers announcing SPECIAL-USE:
  // LIST (selection options) ref pattern [RETURN (options)].
  if (cmd.name === 'LIST' && args[0]?.kind === 'list') args = args.slice(1);
  if (args.length === 4 && args[2]?.kind === 'atom' && args[2].value.toUpperCase() === 'RETURN') args = args.slice(0, 2);
  if (args.length !== 2) throw new SyntaxError('expected a reference and a mailbox pattern');
  const ref = asString(args[0], 'reference');
  const patterns = args[1]!.kind === 'list' ? args[1]!.items.map((t) => asString(t, 'pattern')) : [asString(args[1], 'pattern')];
  if (patterns.length > 20) throw new SyntaxError('too many patterns');
  if (patterns.length === 1 && patterns[0] === '' && cmd.name === 'LIST') {
    s.send(`* LIST (\\Noselect) "${SEPARATOR}" ""`);
    return ok('LIST completed');
  }
  const all = await listFolders(s.root);
  const existing = new Set(all);
  const subscribed = new Set(await readSubscriptions(s.root));
  const names = cmd.name === 'LSUB' ? [...subscribed].filter((n) => n === 'INBOX' || existing.has(n)) : all;
  // Parents that exist only through their children ("a" for "a.b") are listed as \Noselect.
  const candidates = new Set(names);
  for (const n of names) {
    const parts = n.split(SEPARATOR);
    for (let i = 1; i < parts.length; i++) candidates.add(parts.slice(0, i).join(SEPARATOR));
  }
  const hasChildren = (n: string) => all.some((o) => o.startsWith(n + SEPARATOR));
  const out: string[] = [];
  for (const pattern of patterns) {
    const full = ref + pattern;
    const re = patternRegex(full);
    const inboxRe = /^inbox(\.|$)/i.test(full) ? patternRegex('INBOX' + full.slice(5)) : re;
    for (const n of [...candidates].sort()) {
      if (!(n.startsWith('INBOX') ? inboxRe.test(n) || re.test(n) : re.test(n))) continue;
      const attrs: string[] = [];
      const real = cmd.name === 'LSUB' ? subscribed.has(n) : existing.has(n);
      if (!real) {
        // "%" stops at a level: show a parent that is not a mailbox itself.
        if (!full.endsWith('%') && !names.some((o) => o.startsWith(n + SEPARATOR) && re.test(o))) continue;
        attrs.push(cmd.name === 'LSUB' ? '\\Noselect' : '\\NonExistent');
        if (cmd.name === 'LIST') attrs.push('\\Noselect');
      }
      if (cmd.name === 'LIST') {
        attrs.push(hasChildren(n) ? '\\HasChildren' : '\\HasNoChildren');
        const su = specialUseOf(n);
        if (su) attrs.push(su);
      }
      const line = `* ${cmd.name} (${[...new Set(attrs)].join(' ')}) "${SEPARATOR}" ${quoteName(n)}`;
      if (!out.includes(line)) out.push(line);
    }
  }
  for (const l of out) s.send(l);
  return ok(`${cmd.name} completed`);
}

async function status(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  argCount(cmd, 2, 'a mailbox name and a list of status items');
  const name = mailboxArg(cmd.args[0]);
  const items = asList(cmd.args[1], 'status items').map((t) => asString(t, 'status item').toUpperCase());
  if (!items.length) throw new SyntaxError('status items expected');
  for (const it of items) if (!['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN'].includes(it)) throw new SyntaxError(`unknown status item ${it.slice(0, 20)}`);
  if (!(await folderExists(s.root, name))) return no('Mailbox does not exist', 'NONEXISTENT');
  const index = s.services.registry.acquire(folderDir(s.root, name));
  try {
    await index.sync();
    const msgs = index.messages;
    const values: Record<string, number> = {
      MESSAGES: msgs.length,
      RECENT: msgs.filter((m) => m.recent).length + (s.selected?.index === index ? s.selected.recent.size : 0),
      UIDNEXT: index.uidNext,
      UIDVALIDITY: index.uidValidity,
      UNSEEN: msgs.filter((m) => !m.flags.includes('S')).length,
    };
    s.send(`* STATUS ${quoteName(name)} (${items.map((i) => `${i} ${values[i]}`).join(' ')})`);
  } finally {
    s.services.registry.release(index);
  }
  return ok('STATUS completed');
}

async function append(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  if (cmd.args.length < 2 || cmd.args.length > 4) throw new SyntaxError('expected mailbox [flags] [date-time] message');
  const name = mailboxArg(cmd.args[0]);
  let i = 1;
  let letters = '';
  if (cmd.args[i]?.kind === 'list') {
    const flags: string[] = [];
    for (const t of asList(cmd.args[i], 'flags')) {
      const f = asString(t, 'flag');
      const sys = systemFlag(f);
      if (f.startsWith('\\') && !sys && f.toLowerCase() !== '\\recent') throw new SyntaxError(`invalid flag ${f.slice(0, 30)}`);
      if (sys) flags.push(sys);
    }
    letters = applyFlags('', 'set', flags);
    i++;
  }
  let date: Date | undefined;
  if (cmd.args.length - i === 2) {
    const t = cmd.args[i];
    if (!t || t.kind !== 'string' || t.literal) throw new SyntaxError('date-time must be a quoted string');
    date = parseDateTime(t.value.toString('latin1'));
    if (!date) throw new SyntaxError('invalid date-time (expected "17-Jul-1996 02:44:25 -0700")');
    i++;
  }
  if (cmd.args.length - i !== 1) throw new SyntaxError('expected mailbox [flags] [date-time] message');
  // Stored as sent (a proper client sends CRLF); bare LFs are made CRLF so the size served
  // and the bytes fetched back agree.
  const message = toCrlf(asBytes(cmd.args[i], 'message'));
  if (message.length > s.services.maxLiteral) return no(`Message larger than ${s.services.maxLiteral} bytes`, 'TOOBIG');
  if (!(await folderExists(s.root, name))) return no('Mailbox does not exist', 'TRYCREATE');
  const index = s.services.registry.acquire(folderDir(s.root, name));
  try {
    const tmp = await index.tmpFile();
    try {
      await writeDurably(tmp, message);
      const rec = await index.add(tmp, letters, date, message.length);
      return ok('APPEND completed', `APPENDUID ${index.uidValidity} ${rec.uid}`);
    } catch (err) {
      await fsp.unlink(tmp).catch(() => {});
      throw err;
    }
  } finally {
    s.services.registry.release(index);
  }
}

