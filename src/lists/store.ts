// lists.db: the lists, their members and the posts held for moderation. One SQLite file under
// the data directory, its schema versioned like reports.db (PRAGMA user_version, migrations from
// 1 up). A member is `pending` from the request until the address confirms, `confirmed` after,
// `disabled` after repeated hard bounces, `suppressed` after a complaint about the list's mail
// (kept so that no administrator's invitation reaches it again); only confirmed members receive
// posts. Nothing here makes a member confirmed except confirm(), which takes a token the
// address itself answered (that alone lifts a suppression).
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqliteFile } from '../store/sqlite-file.js';

export class ListError extends Error {
  override readonly name = 'ListError';
  constructor(readonly code: 'NO_SUCH_LIST' | 'EXISTS' | 'INVALID' | 'FULL', message: string) {
    super(message);
  }
}

export function listsFile(dataDir: string): string {
  return path.join(dataDir, 'lists.db');
}

export type MemberState = 'pending' | 'confirmed' | 'disabled' | 'suppressed';
export type ReplyTo = 'sender' | 'list';
export type ContentPolicy = 'plain' | 'keep';
export type Posting = 'members' | 'owners';

export interface ListSettings {
  readonly description: string;
  readonly owners: readonly string[];
  readonly moderators: readonly string[];
  /** Where replies go: the author (default) or the list. */
  readonly reply_to: ReplyTo;
  /** plain (default): HTML to text, attachments removed; keep: the post as it came (headers still rewritten). */
  readonly content: ContentPolicy;
  /** Who posts without moderation: members (default) or owners only (an announcement list). */
  readonly posting: Posting;
}

export interface List extends ListSettings {
  readonly address: string;
  readonly created: number;
}

export interface Member {
  readonly address: string;
  readonly state: MemberState;
  readonly bounces: number;
  readonly added: number;
  readonly confirmed?: number;
}

export interface HeldPost {
  readonly id: number;
  readonly list: string;
  readonly sender: string;
  readonly from: string;
  readonly subject: string;
  readonly reason: string;
  readonly at: number;
}

const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE lists (
      address     TEXT PRIMARY KEY,
      description TEXT NOT NULL DEFAULT '',
      owners      TEXT NOT NULL,             -- JSON array of addresses
      moderators  TEXT NOT NULL,             -- JSON array of addresses
      reply_to    TEXT NOT NULL DEFAULT 'sender',
      content     TEXT NOT NULL DEFAULT 'plain',
      posting     TEXT NOT NULL DEFAULT 'members',
      created     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE members (
      list        TEXT NOT NULL REFERENCES lists(address) ON DELETE CASCADE,
      address     TEXT NOT NULL,
      state       TEXT NOT NULL,             -- pending | confirmed | disabled | suppressed (no CHECK: added in place)
      bounces     INTEGER NOT NULL DEFAULT 0,
      added       INTEGER NOT NULL,
      confirmed   INTEGER,
      PRIMARY KEY (list, address)
    ) WITHOUT ROWID;
    CREATE TABLE held (
      id          INTEGER PRIMARY KEY,
      list        TEXT NOT NULL REFERENCES lists(address) ON DELETE CASCADE,
      sender      TEXT NOT NULL,
      from_header TEXT NOT NULL,
      subject     TEXT NOT NULL,
      reason      TEXT NOT NULL,
      at          INTEGER NOT NULL,
      raw         BLOB NOT NULL
    );
    CREATE INDEX held_list ON held (list, at);
  `,
};

/** Held posts kept per list at most. */
export const MAX_HELD = 1000;

const DEFAULTS: ListSettings = { description: '', owners: [], moderators: [], reply_to: 'sender', content: 'plain', posting: 'members' };
const ADDRESS = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9.-]+$/;

/** A lower-cased address, or ListError INVALID naming `what`. */
export function normalAddress(value: string, what = 'address'): string {
  const a = value.trim().toLowerCase();
  if (a.length > 254 || !ADDRESS.test(a)) throw new ListError('INVALID', `${what} ${JSON.stringify(value)} is not an address such as someone@example.org`);
  return a;
}

/** Parses `key=value` settings (owners/moderators comma-separated); ListError INVALID names the key. */
export function parseSettings(assignments: readonly string[]): Partial<ListSettings> {
  const out: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq < 1) throw new ListError('INVALID', `"${a}" is not key=value (keys: description, owners, moderators, reply_to, content, posting)`);
    const key = a.slice(0, eq).trim();
    const value = a.slice(eq + 1).trim();
    switch (key) {
      case 'description':
        if (value.length > 300 || /[\r\n]/.test(value)) throw new ListError('INVALID', 'description: one line of at most 300 characters');
        out.description = value;
        break;
      case 'owners': case 'moderators':
        out[key] = value ? value.split(',').map((x) => normalAddress(x, key)) : [];
        break;
      case 'reply_to':
        if (value !== 'sender' && value !== 'list') throw new ListError('INVALID', 'reply_to: must be sender or list');
        out.reply_to = value;
        break;
      case 'content':
        if (value !== 'plain' && value !== 'keep') throw new ListError('INVALID', 'content: must be plain or keep');
        out.content = value;
        break;
      case 'posting':
        if (value !== 'members' && value !== 'owners') throw new ListError('INVALID', 'posting: must be members or owners');
        out.posting = value;
        break;
      default:
        throw new ListError('INVALID', `unknown setting "${key}" (keys: description, owners, moderators, reply_to, content, posting)`);
    }
  }
  return out as Partial<ListSettings>;
}

type ListRow = { address: string; description: string; owners: string; moderators: string; reply_to: string; content: string; posting: string; created: number };
type MemberRow = { address: string; state: string; bounces: number; added: number; confirmed: number | null };

export class ListStore {
  private constructor(private readonly db: Database.Database, private readonly now: () => number) {}

  static open(file: string, now: () => number = Date.now): ListStore {
    const db = openSqliteFile(file, { migrations: MIGRATIONS, tooNew: (m) => new Error(`lists.db: ${m}`) });
    db.pragma('foreign_keys = ON');
    return new ListStore(db, now);
  }

  close(): void {
    this.db.close();
  }

  create(address: string, settings: Partial<ListSettings>): List {
    const a = normalAddress(address, 'list address');
    if (this.get(a)) throw new ListError('EXISTS', `list ${a} exists already`);
    const s = { ...DEFAULTS, ...settings };
    this.db.prepare('INSERT INTO lists (address, description, owners, moderators, reply_to, content, posting, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(a, s.description, JSON.stringify(s.owners), JSON.stringify(s.moderators), s.reply_to, s.content, s.posting, this.now());
    return this.get(a)!;
  }

  delete(address: string): void {
    const r = this.db.prepare('DELETE FROM lists WHERE address = ?').run(address.toLowerCase());
    if (!r.changes) throw new ListError('NO_SUCH_LIST', `no list ${address}`);
  }

  set(address: string, settings: Partial<ListSettings>): List {
    const l = this.require(address);
    const s = { ...l, ...settings };
    this.db.prepare('UPDATE lists SET description = ?, owners = ?, moderators = ?, reply_to = ?, content = ?, posting = ? WHERE address = ?')
      .run(s.description, JSON.stringify(s.owners), JSON.stringify(s.moderators), s.reply_to, s.content, s.posting, l.address);
    return this.get(l.address)!;
  }

  get(address: string): List | undefined {
    const r = this.db.prepare('SELECT * FROM lists WHERE address = ?').get(address.toLowerCase()) as ListRow | undefined;
    return r && toList(r);
  }

  require(address: string): List {
    const l = this.get(address);
    if (!l) throw new ListError('NO_SUCH_LIST', `no list ${address}`);
    return l;
  }

  all(): List[] {
    return (this.db.prepare('SELECT * FROM lists ORDER BY address').all() as ListRow[]).map(toList);
  }

  member(list: string, address: string): Member | undefined {
    const r = this.db.prepare('SELECT address, state, bounces, added, confirmed FROM members WHERE list = ? AND address = ?').get(list, address) as MemberRow | undefined;
    return r && toMember(r);
  }

  members(list: string, state?: MemberState): Member[] {
    const rows = (state
      ? this.db.prepare('SELECT address, state, bounces, added, confirmed FROM members WHERE list = ? AND state = ? ORDER BY address').all(list, state)
      : this.db.prepare('SELECT address, state, bounces, added, confirmed FROM members WHERE list = ? ORDER BY address').all(list)) as MemberRow[];
    return rows.map(toMember);
  }

  /** Members in any state but suppressed (what lists.max_members counts). */
  count(list: string): number {
    return (this.db.prepare("SELECT count(*) AS n FROM members WHERE list = ? AND state != 'suppressed'").get(list) as { n: number }).n;
  }

  /**
   * A subscription request: the address is recorded as pending (a confirmed or disabled member
   * stays as it is). Returns whether a new pending row was made. FULL past `max` members.
   */
  request(list: string, address: string, max: number): boolean {
    if (this.member(list, address)) return false;
    if (this.count(list) >= max) throw new ListError('FULL', `list ${list} has ${max} members (lists.max_members)`);
    this.db.prepare("INSERT INTO members (list, address, state, added) VALUES (?, ?, 'pending', ?)").run(list, address, this.now());
    return true;
  }

  /** The address answered its confirmation: it becomes (or again is) a confirmed member. */
  confirm(list: string, address: string): void {
    this.require(list);
    this.db.prepare(`INSERT INTO members (list, address, state, added, confirmed) VALUES (?, ?, 'confirmed', ?, ?)
      ON CONFLICT (list, address) DO UPDATE SET state = 'confirmed', bounces = 0, confirmed = excluded.confirmed`).run(list, address, this.now(), this.now());
  }

  /**
   * Removes the address; true when it was there. A suppressed address stays (it gets nothing
   * either way, and the row is what keeps it from being invited again).
   */
  remove(list: string, address: string): boolean {
    return this.db.prepare("DELETE FROM members WHERE list = ? AND address = ? AND state != 'suppressed'").run(list, address).changes > 0;
  }

  /**
   * The address complained about the list's mail: it gets no more copies, whatever it was
   * (recorded even when it had left, so that nobody invites it again). Undefined without the list.
   */
  suppress(list: string, address: string): Member | undefined {
    if (!this.get(list)) return undefined;
    this.db.prepare(`INSERT INTO members (list, address, state, added) VALUES (?, ?, 'suppressed', ?)
      ON CONFLICT (list, address) DO UPDATE SET state = 'suppressed'`).run(list, address, this.now());
    return this.member(list, address);
  }

  /** Counts a hard bounce; disables the member at `limit`. Returns the member after, if any. */
  bounce(list: string, address: string, limit: number): Member | undefined {
    this.db.prepare(`UPDATE members SET bounces = bounces + 1, state = CASE WHEN bounces + 1 >= ? AND state = 'confirmed' THEN 'disabled' ELSE state END
      WHERE list = ? AND address = ?`).run(limit, list, address);
    return this.member(list, address);
  }

  /** Keeps a post for moderation; past MAX_HELD per list the oldest go (a flood of spam must not fill the disk). */
  hold(list: string, post: { sender: string; from: string; subject: string; reason: string; raw: Buffer }): number {
    const r = this.db.prepare('INSERT INTO held (list, sender, from_header, subject, reason, at, raw) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(list, post.sender, post.from.slice(0, 500), post.subject.slice(0, 500), post.reason, this.now(), post.raw);
    this.db.prepare('DELETE FROM held WHERE list = ? AND id NOT IN (SELECT id FROM held WHERE list = ? ORDER BY id DESC LIMIT ?)').run(list, list, MAX_HELD);
    return Number(r.lastInsertRowid);
  }

  held(list: string): HeldPost[] {
    return (this.db.prepare('SELECT id, list, sender, from_header AS "from", subject, reason, at FROM held WHERE list = ? ORDER BY id').all(list) as HeldPost[]);
  }

  /** Takes a held post out (to send it or to drop it): its raw bytes, or undefined. */
  takeHeld(list: string, id: number): Buffer | undefined {
    const r = this.db.prepare('SELECT raw FROM held WHERE list = ? AND id = ?').get(list, id) as { raw: Buffer } | undefined;
    if (r) this.db.prepare('DELETE FROM held WHERE id = ?').run(id);
    return r?.raw;
  }
}

function toList(r: ListRow): List {
  return {
    address: r.address, description: r.description, owners: JSON.parse(r.owners) as string[], moderators: JSON.parse(r.moderators) as string[],
    reply_to: r.reply_to as ReplyTo, content: r.content as ContentPolicy, posting: r.posting as Posting, created: r.created,
  };
}

function toMember(r: MemberRow): Member {
  return { address: r.address, state: r.state as MemberState, bounces: r.bounces, added: r.added, ...(r.confirmed != null ? { confirmed: r.confirmed } : {}) };
}
