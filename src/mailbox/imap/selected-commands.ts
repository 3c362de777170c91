// Commands of the selected state (RFC 3501 6.4, RFC 4315 UIDPLUS, RFC 6851 MOVE, RFC 3691
// UNSELECT): CHECK, CLOSE, UNSELECT, EXPUNGE, SEARCH, FETCH, STORE, COPY, MOVE and their UID
// forms. Moves into and out of Junk feed the spam filter's learner (onJunkTrain).
import { folderDir } from '../folder-names.js';
import { folderExists } from '../maildir-folders.js';
import { systemFlag, type MessageRecord } from '../maildir-index.js';
import { encodeValue, str, type ImapValue } from './encode.js';
import { applyPartial, bodyStructure, envelopeValue, internalDate, parseFetch, sectionData, type FetchItem } from './fetch.js';
import { mailboxArg } from './mailbox-commands.js';
import { BadCharsetError, matches, needsContent, parseSearch, type SearchSubject } from './search.js';
import { formatSet, inSet, parseSequenceSet } from './sequence-set.js';
import { bad, no, ok, type CommandSession, type Completion, type SelectedMailbox } from './command-context.js';
import { SyntaxError, asAtom, asString, type ParsedCommand, type Token } from './tokens.js';
import { envelopeOf } from '../message-structure.js';
import { transfer, trainJunk } from '../junk-move.js';

export const SELECTED_COMMANDS = new Set(['CHECK', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE',
  'UID SEARCH', 'UID FETCH', 'UID STORE', 'UID COPY', 'UID MOVE', 'UID EXPUNGE']);

export async function runSelectedCommand(s: CommandSession, cmd: ParsedCommand): Promise<Completion> {
  const sel = s.selected!;
  const uid = cmd.name.startsWith('UID ');
  const name = uid ? cmd.name.slice(4) : cmd.name;
  switch (name) {
    case 'CHECK':
      await sel.index.sync();
      return ok('CHECK completed');
    case 'CLOSE':
      if (!sel.readOnly) await sel.index.expunge(deletedUids(sel));
      s.deselect();
      return ok('CLOSE completed');
    case 'UNSELECT':
      s.deselect();
      return ok('UNSELECT completed');
    case 'EXPUNGE': {
      if (sel.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
      let uids = deletedUids(sel);
      if (uid) {
        const set = parseSequenceSet(asAtom(cmd.args[0], 'UID set'), maxUid(sel));
        uids = uids.filter((u) => inSet(set, u));
      } else if (cmd.args.length) throw new SyntaxError('EXPUNGE takes no arguments');
      await sel.index.expunge(uids);
      return ok('EXPUNGE completed');
    }
    case 'SEARCH': return search(s, sel, cmd, uid);
    case 'FETCH': return fetch(s, sel, cmd, uid);
    case 'STORE': return store(s, sel, cmd, uid);
    case 'COPY': case 'MOVE': return copy(s, sel, cmd, uid, name === 'MOVE');
    default: return bad(`Unknown command ${cmd.name}`);
  }
}

function deletedUids(sel: SelectedMailbox): number[] {
  return sel.uids.filter((u) => sel.index.get(u)?.flags.includes('T'));
}

function maxUid(sel: SelectedMailbox): number {
  return sel.uids.length ? sel.uids[sel.uids.length - 1]! : 0;
}

/** The [sequence number, UID] pairs a set names; BAD for sequence numbers beyond the view. */
function targets(sel: SelectedMailbox, t: Token | undefined, uidMode: boolean): [number, number][] {
  const text = asAtom(t, 'sequence set');
  if (uidMode) {
    const set = parseSequenceSet(text, maxUid(sel));
    const out: [number, number][] = [];
    sel.uids.forEach((u, i) => {
      if (inSet(set, u)) out.push([i + 1, u]);
    });
    return out;
  }
  const n = sel.uids.length;
  if (n === 0 && /^[1*]:\*$|^\*$/.test(text)) return [];
  const set = parseSequenceSet(text, n);
  for (const [, b] of set.ranges) if (b > n) throw new SyntaxError(`Invalid message sequence number (the mailbox has ${n} messages)`);
  const out: [number, number][] = [];
  sel.uids.forEach((u, i) => {
    if (inSet(set, i + 1)) out.push([i + 1, u]);
  });
  return out;
}

// --- SEARCH ---------------------------------------------------------------------------------------

async function search(s: CommandSession, sel: SelectedMailbox, cmd: ParsedCommand, uidMode: boolean): Promise<Completion> {
  if (!cmd.args.length) throw new SyntaxError('SEARCH needs search keys');
  let key;
  try {
    key = parseSearch(cmd.args, { seq: sel.uids.length, uid: maxUid(sel) });
  } catch (err) {
    if (err instanceof BadCharsetError) return no('Unsupported charset', 'BADCHARSET (UTF-8 US-ASCII)');
    throw err;
  }
  const content = needsContent(key);
  const hits: number[] = [];
  for (let i = 0; i < sel.uids.length; i++) {
    const u = sel.uids[i]!;
    const rec = sel.index.get(u);
    if (!rec) continue;
    let loaded: { buf: Buffer; root: import('../message-structure.js').MimePart } | undefined | null = null;
    const subject: SearchSubject = {
      seq: i + 1, uid: u, flags: rec.flags, recent: sel.recent.has(u), mtime: rec.mtime,
      size: async () => (await s.services.access.size(sel.index, u)) ?? 0,
      content: async () => {
        if (loaded === null) loaded = content ? await s.services.access.load(sel.index, u) : undefined;
        return loaded;
      },
    };
    if (await matches(key, subject)) hits.push(uidMode ? u : i + 1);
  }
  s.send(`* SEARCH${hits.length ? ' ' + hits.join(' ') : ''}`);
  return ok(`${uidMode ? 'UID ' : ''}SEARCH completed`);
}

// --- FETCH ----------------------------------------------------------------------------------------

async function fetch(s: CommandSession, sel: SelectedMailbox, cmd: ParsedCommand, uidMode: boolean): Promise<Completion> {
  if (cmd.args.length !== 2) throw new SyntaxError('expected a sequence set and data items');
  const list = targets(sel, cmd.args[0], uidMode);
  const req = parseFetch(cmd.args[1], uidMode);
  let items = req.items;
  if (req.setsSeen && !sel.readOnly) {
    const unseen = list.map(([, u]) => u).filter((u) => {
      const r = sel.index.get(u);
      return r && !r.flags.includes('S');
    });
    if (unseen.length) {
      await sel.index.setFlags(unseen, 'add', ['\\Seen']);
      // RFC 3501 6.4.5: the client learns the new flags in the same response.
      if (!items.some((i) => i.kind === 'FLAGS')) items = [...items, { kind: 'FLAGS' }];
    }
  }
  let missing = false;
  for (const [seq, u] of list) {
    const rec = sel.index.get(u);
    if (!rec) {
      missing = true;
      continue;
    }
    const loaded = req.needsContent ? await s.services.access.load(sel.index, u) : undefined;
    if (req.needsContent && !loaded) {
      missing = true;
      continue;
    }
    const parts: Buffer[] = [Buffer.from(`* ${seq} FETCH (`)];
    let first = true;
    const add = (label: string, value: ImapValue) => {
      parts.push(Buffer.from(`${first ? '' : ' '}${label} `));
      encodeValue(value, parts);
      first = false;
    };
    for (const item of items) {
      await addItem(s, sel, rec, loaded, item, add);
    }
    parts.push(Buffer.from(')\r\n'));
    await s.sendRaw(Buffer.concat(parts));
  }
  return missing ? no('Some of the requested messages no longer exist', 'EXPUNGEISSUED') : ok(`${uidMode ? 'UID ' : ''}FETCH completed`);
}

async function addItem(s: CommandSession, sel: SelectedMailbox, rec: MessageRecord,
  loaded: { buf: Buffer; root: import('../message-structure.js').MimePart } | undefined, item: FetchItem,
  add: (label: string, v: ImapValue) => void): Promise<void> {
  switch (item.kind) {
    case 'UID': return add('UID', rec.uid);
    case 'FLAGS':
      sel.flagsSeen.set(rec.uid, rec.flags);
      return add('FLAGS', s.flagList(rec.uid, rec.flags).split(' ').filter(Boolean).map((f) => ({ atom: f })));
    case 'INTERNALDATE': return add('INTERNALDATE', str(internalDate(rec.mtime)));
    case 'RFC822.SIZE': return add('RFC822.SIZE', loaded ? loaded.buf.length : (await s.services.access.size(sel.index, rec.uid)) ?? 0);
    case 'ENVELOPE': return add('ENVELOPE', envelopeValue(envelopeOf(loaded!.root.fields)));
    case 'BODYSTRUCTURE': return add('BODYSTRUCTURE', bodyStructure(loaded!.buf, loaded!.root, true));
    case 'BODY': return add('BODY', bodyStructure(loaded!.buf, loaded!.root, false));
    case 'RFC822': return add('RFC822', { literal: loaded!.buf });
    case 'RFC822.HEADER': return add('RFC822.HEADER', { literal: loaded!.buf.subarray(0, loaded!.root.headerEnd) });
    case 'RFC822.TEXT': return add('RFC822.TEXT', { literal: loaded!.buf.subarray(loaded!.root.bodyStart) });
    case 'section': {
      const data = sectionData(loaded!.buf, loaded!.root, item);
      return add(item.label, data === undefined ? null : { literal: applyPartial(data, item.partial) });
    }
  }
}

// --- STORE ----------------------------------------------------------------------------------------

async function store(s: CommandSession, sel: SelectedMailbox, cmd: ParsedCommand, uidMode: boolean): Promise<Completion> {
  if (cmd.args.length < 3) throw new SyntaxError('expected a sequence set, FLAGS/+FLAGS/-FLAGS and flags');
  const list = targets(sel, cmd.args[0], uidMode);
  const op = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(asAtom(cmd.args[1], 'store item'));
  if (!op) throw new SyntaxError('expected FLAGS, +FLAGS or -FLAGS (optionally .SILENT)');
  const flagTokens = cmd.args.length === 3 && cmd.args[2]!.kind === 'list' ? cmd.args[2]!.items : cmd.args.slice(2);
  const flags: string[] = [];
  for (const t of flagTokens) {
    const f = asString(t, 'flag');
    if (f.startsWith('\\')) {
      const sys = systemFlag(f);
      if (!sys) {
        if (f.toLowerCase() === '\\recent') continue;
        throw new SyntaxError(`invalid flag ${f.slice(0, 30)}`);
      }
      flags.push(sys);
    } else if (!/^[\x21-\x7e]+$/.test(f) || /[(){%*"\\\]]/.test(f)) {
      throw new SyntaxError(`invalid keyword ${f.slice(0, 30)}`);
    }
    // Keywords are not kept (PERMANENTFLAGS has no \*); clients then keep them locally.
  }
  if (sel.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
  const mode = op[1] === '+' ? 'add' : op[1] === '-' ? 'remove' : 'set';
  await sel.index.setFlags(list.map(([, u]) => u), mode, flags);
  const silent = !!op[2];
  const lines: string[] = [];
  for (const [seq, u] of list) {
    const rec = sel.index.get(u);
    if (!rec) continue;
    sel.flagsSeen.set(u, rec.flags);
    // .SILENT: no echo of the client's own change.
    if (!silent) lines.push(`* ${seq} FETCH (${uidMode ? `UID ${u} ` : ''}FLAGS (${s.flagList(u, rec.flags)}))`);
  }
  if (lines.length) await s.sendRaw(Buffer.from(lines.map((l) => `${l}\r\n`).join('')));
  return ok(`${uidMode ? 'UID ' : ''}STORE completed`);
}

// --- COPY / MOVE ----------------------------------------------------------------------------------

async function copy(s: CommandSession, sel: SelectedMailbox, cmd: ParsedCommand, uidMode: boolean, move: boolean): Promise<Completion> {
  if (cmd.args.length !== 2) throw new SyntaxError('expected a sequence set and a mailbox name');
  const list = targets(sel, cmd.args[0], uidMode);
  const destName = mailboxArg(cmd.args[1]);
  if (move && sel.readOnly) return no('Mailbox is read-only', 'READ-ONLY');
  if (!(await folderExists(s.root, destName))) return no('Mailbox does not exist', 'TRYCREATE');
  const label = move ? 'MOVE' : 'COPY';
  if (!list.length) return ok(`${uidMode ? 'UID ' : ''}${label} completed (no messages)`);
  const registry = s.services.registry;
  const dest = registry.acquire(folderDir(s.root, destName));
  const srcUids: number[] = [];
  const destRecs: MessageRecord[] = [];
  try {
    if (dest !== sel.index) await dest.sync();
    for (const [, u] of list) {
      const rec = await transfer(sel.index, u, dest, move);
      if (!rec) continue;
      srcUids.push(u);
      destRecs.push(rec);
    }
  } finally {
    registry.release(dest);
  }
  const code = srcUids.length ? `COPYUID ${dest.uidValidity} ${formatSet(srcUids)} ${formatSet(destRecs.map((r) => r.uid))}` : undefined;
  if (move) {
    await sel.index.expunge(srcUids);
    if (code) s.send(`* OK [${code}] Moved`);
  }
  trainJunk({ user: s.user!, from: sel.name, to: destName, dest, recs: destRecs, hook: s.services.onJunkTrain, log: s.log });
  if (!srcUids.length) return no('The messages no longer exist', 'EXPUNGEISSUED');
  return move ? ok(`${uidMode ? 'UID ' : ''}MOVE completed`) : ok(`${uidMode ? 'UID ' : ''}COPY completed`, code);
}


