// The account store: local users (with scrypt password hashes), aliases and per-user spam
// settings. By default in one SQLite file `<dataDir>/accounts.db`: the CLI and a running gateway
// open the same file at once (WAL mode, busy timeout), so a user added with `portcullis user add`
// is known at the next RCPT. With `store.backend: redis` they live in Redis instead, shared by
// every node (redis-accounts.ts; opened by openAccountStore() in accounts-open.ts).
//
// Security property relied on by the SMTP layer: names stored here use a conservative
// character set (a-z 0-9 . _ + -), and every lookup applies the same rules, so an address with
// routing characters — percent hack (user%host@gw), bang path (host!user@gw), quoted local
// part ("user@x"@gw), source route — can never match a local account or alias.
import path from 'node:path';
import { domainToASCII } from 'node:url';
import type Database from 'better-sqlite3';
import { openSqliteFile } from '../store/sqlite-file.js';
import { evaluatePassword } from './password-policy.js';
import { MAX_PASSWORD_LENGTH, scryptHasher, type PasswordHasher, type ScryptParams } from './password-hash.js';

export type AccountErrorCode =
  | 'INVALID_ADDRESS'
  | 'INVALID_TARGET'
  | 'WEAK_PASSWORD'
  | 'DUPLICATE'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_ALIAS'
  | 'SCHEMA'
  /** The shared backend (Redis) cannot answer now: a temporary failure, to be retried. */
  | 'UNAVAILABLE';

/** Refused input or an impossible operation; `message` says what is wrong, for the operator. */
export class AccountError extends Error {
  constructor(readonly code: AccountErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AccountError';
  }
}

// ---------------------------------------------------------------------------------------------
// Address rules

/** Local part of a user or alias: a-z 0-9 . _ + -, no leading/trailing dot, no "..", ≤ 64. */
const LOCAL_RE = /^(?!\.)(?!.*\.\.)(?!.*\.$)[a-z0-9._+-]{1,64}$/;
/** Local part of an alias *target*, which may be an external mailbox: RFC 5321 dot-atom text
 *  without the routing characters % and ! (and, being a dot-atom, without quoting). */
const TARGET_LOCAL_RE = /^(?!\.)(?!.*\.\.)(?!.*\.$)[a-z0-9#$&'*+/=?^_`{|}~.-]{1,64}$/;
/** Before IDNA: ASCII letters, digits, dot and hyphen, or any non-ASCII character (an IDN).
 *  This check matters: domainToASCII() percent-decodes and cuts at "/" or "\", so it must
 *  never see those characters. */
const RAW_DOMAIN_RE = /^(?:[A-Za-z0-9.-]|[^\x00-\x7f])+$/;
const LABEL_RE = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export interface ParsedAddress {
  /** The normalised address, `local@domain`. */
  readonly address: string;
  readonly local: string;
  /** ASCII (IDNA) form, lower case. */
  readonly domain: string;
}

type AddressKind = 'user' | 'target';

function invalid(kind: AddressKind, raw: string, why: string): AccountError {
  return new AccountError(kind === 'user' ? 'INVALID_ADDRESS' : 'INVALID_TARGET',
    `${kind === 'user' ? 'address' : 'alias target'} ${JSON.stringify(raw)}: ${why}`);
}

function normalizeDomain(raw: string, kind: AddressKind, input: string): string {
  if (raw === '') throw invalid(kind, input, 'the domain is empty');
  if (!RAW_DOMAIN_RE.test(raw)) {
    throw invalid(kind, input, 'the domain may only contain letters, digits, "." and "-" (address literals are not accepted)');
  }
  const ascii = domainToASCII(raw);
  if (ascii === '') throw invalid(kind, input, `the domain ${JSON.stringify(raw)} is not a valid (internationalised) domain name`);
  if (ascii.length > 253) throw invalid(kind, input, 'the domain is longer than 253 characters');
  const labels = ascii.split('.');
  if (!labels.every((l) => LABEL_RE.test(l))) {
    throw invalid(kind, input, 'the domain must be a host name: labels of 1–63 letters, digits or "-", separated by single dots, no trailing dot');
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1])) {
    throw invalid(kind, input, 'the domain looks like an IP address; use a domain name');
  }
  return ascii;
}

function parse(input: string, kind: AddressKind): ParsedAddress {
  if (typeof input !== 'string') throw invalid(kind, String(input), 'not a string');
  const s = input.trim();
  if (s === '') throw invalid(kind, input, 'empty');
  if (/["\\%!]/.test(s)) {
    throw invalid(kind, input, 'the characters % ! " and \\ are not accepted (routing and quoting are refused)');
  }
  const at = s.indexOf('@');
  if (at < 0) throw invalid(kind, input, 'a full address local@domain is required');
  if (s.indexOf('@', at + 1) >= 0) throw invalid(kind, input, 'more than one "@"');
  const rawLocal = s.slice(0, at);
  // Check the characters *before* lower-casing: toLowerCase() maps a few non-ASCII letters to
  // ASCII ones (KELVIN SIGN → "k"), which must not make an address match a local account.
  if (rawLocal === '') throw invalid(kind, input, 'the local part (before "@") is empty');
  if (/[^\x21-\x7e]/.test(rawLocal)) throw invalid(kind, input, 'the local part may only contain ASCII letters, digits and . _ + -');
  const local = rawLocal.toLowerCase();
  if (local.length > 64) throw invalid(kind, input, 'the local part is longer than 64 characters');
  const re = kind === 'user' ? LOCAL_RE : TARGET_LOCAL_RE;
  if (!re.test(local)) {
    throw invalid(kind, input, kind === 'user'
      ? 'the local part may only contain a-z 0-9 . _ + -, and may not start or end with "." or contain ".."'
      : 'the local part contains a character that is not allowed, or starts or ends with "." or contains ".."');
  }
  const domain = normalizeDomain(s.slice(at + 1), kind, input);
  return { address: `${local}@${domain}`, local, domain };
}

/** Parses and normalises a user or alias address (trim, lower case, IDNA); throws AccountError. */
export function parseAddress(address: string): ParsedAddress {
  return parse(address, 'user');
}

/** The normalised form of a user or alias address; throws AccountError when it is not acceptable. */
export function normalizeAddress(address: string): string {
  return parse(address, 'user').address;
}

/** Like normalizeAddress() but undefined instead of an exception (the RCPT path). */
function tryNormalize(address: string): string | undefined {
  try {
    return parse(address, 'user').address;
  } catch {
    return undefined;
  }
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

// ---------------------------------------------------------------------------------------------
// Password policy

/** Minimum password length (characters). */
export const MIN_PASSWORD_LENGTH = 10;

/**
 * Why `password` is refused for `address`, or undefined when it is acceptable. A single
 * function on purpose: the full strength policy will extend it.
 */
export function checkPasswordPolicy(password: string, address: string): string | undefined {
  // The rules (length, address parts, the common-password list, zxcvbn strength) live in
  // password-policy.ts; this is the account store's one entry point to them.
  const verdict = evaluatePassword(password, address.trim().toLowerCase(), { minLength: MIN_PASSWORD_LENGTH });
  return verdict.ok ? undefined : verdict.reason;
}

// ---------------------------------------------------------------------------------------------
// Mailbox paths

/**
 * `<dataDir>/mail/<domain>/<local>` for a local user. The address is validated with the user
 * rules, so neither part can be "..", contain "/" or start with "."; the result is checked to
 * lie under `<dataDir>/mail` all the same.
 */
export function mailboxPath(dataDir: string, address: string): string {
  const { local, domain } = parseAddress(address);
  const root = path.resolve(dataDir, 'mail');
  const p = path.join(root, domain, local);
  if (!p.startsWith(root + path.sep) || path.dirname(path.dirname(p)) !== root) {
    throw new AccountError('INVALID_ADDRESS', `address ${JSON.stringify(address)} does not map to a mailbox under ${root}`);
  }
  return p;
}

/** The account file inside the data directory. */
export function accountsFile(dataDir: string): string {
  return path.join(dataDir, 'accounts.db');
}

// ---------------------------------------------------------------------------------------------
// The store

export type LookupResult = { kind: 'user' } | { kind: 'alias'; targets: string[] };

export interface Expansion {
  /** Final local users, normalised, deduplicated, in first-seen order. */
  users: string[];
  /** Targets outside the local domains, to be relayed. */
  external: string[];
  /** Targets in a local domain that are neither user nor alias (dropped), and aliases nested
   *  deeper than MAX_ALIAS_DEPTH. */
  unknown: string[];
}

export interface AccountStoreOptions {
  /** scrypt parameters for new hashes (default: DEFAULT_SCRYPT_PARAMS). Ignored if `hasher` is given. */
  hashParams?: ScryptParams;
  /** Replaces the scrypt hasher (tests). */
  hasher?: PasswordHasher;
  /** Milliseconds to wait for a lock held by another process (default 5000). */
  busyTimeoutMs?: number;
  /** Clock for the `created` / `updated` columns. */
  now?: () => Date;
}

/** Aliases pointing to aliases are followed this many levels deep. */
export const MAX_ALIAS_DEPTH = 10;

/** Most targets one alias may have. */
export const MAX_ALIAS_TARGETS = 1000;

/** SQL per schema version; the highest key is the current one (see store/sqlite-file.ts). */
const MIGRATIONS: Record<number, string> = {
  1: `
    CREATE TABLE users (
      address TEXT PRIMARY KEY NOT NULL,
      hash    TEXT NOT NULL,
      created TEXT NOT NULL,
      updated TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE aliases (
      address TEXT PRIMARY KEY NOT NULL,
      targets TEXT NOT NULL,          -- JSON array of normalised addresses
      created TEXT NOT NULL
    ) WITHOUT ROWID;
  `,
  // Each user's spam-filter settings (src/pipeline/user-settings.ts), JSON; removed with the user.
  2: `
    CREATE TABLE user_settings (
      address  TEXT PRIMARY KEY NOT NULL,
      settings TEXT NOT NULL,
      updated  TEXT NOT NULL
    ) WITHOUT ROWID;
  `,
};

/** Everything the account store holds, for `portcullis store migrate` (both ways). */
export interface AccountsDump {
  readonly users: { readonly address: string; readonly hash: string; readonly created: string }[];
  readonly aliases: { readonly address: string; readonly targets: string[]; readonly created: string }[];
  readonly settings: { readonly address: string; readonly settings: string }[];
}

/**
 * Where the accounts live: the SQLite file of one node (below), or a Redis shared by every node
 * (redis-accounts.ts). Addresses reaching it are normalised already. The synchronous reads are
 * the RCPT path's and the console's; a backend that cannot answer one throws AccountError
 * UNAVAILABLE (never "no such user"). The password hash is read with `userHash`, asynchronously,
 * from the authoritative copy: a password changed on one node counts on every node at once.
 */
export interface AccountBackend {
  userExists(addr: string): boolean;
  /** The alias's targets as stored (JSON array), or undefined. */
  aliasTargets(addr: string): string | undefined;
  settings(addr: string): string | undefined;
  allSettings(): { address: string; settings: string }[];
  listUsers(): { address: string; created: string }[];
  listAliases(): { address: string; targets: string }[];
  userHash(addr: string): Promise<string | undefined>;
  /** Inserts when the name is free; otherwise says what holds it. Atomic against other writers. */
  insertUser(addr: string, hash: string, ts: string): Promise<'ok' | 'user' | 'alias'>;
  /** False when there is no such user. */
  updateHash(addr: string, hash: string, ts: string): Promise<boolean>;
  /** Compare-and-set: replaces the hash only if it is still `old` (a rehash after login). */
  rehash(addr: string, fresh: string, ts: string, old: string): Promise<void>;
  /** Removes the user and its settings; false when there was no such user. */
  deleteUser(addr: string): Promise<boolean>;
  insertAlias(addr: string, targetsJson: string, ts: string): Promise<'ok' | 'user' | 'alias'>;
  deleteAlias(addr: string): Promise<boolean>;
  /** False when there is no such user. */
  putSettings(addr: string, json: string, ts: string): Promise<boolean>;
  dump(): Promise<AccountsDump>;
  /** Writes every entry, overwriting (a name that is a user in the dump stops being an alias, and so on). */
  restore(dump: AccountsDump): Promise<void>;
  close(): void;
}

/** The account file of one node (the default; `portcullis user add` and the gateway share it). */
class SqliteAccounts implements AccountBackend {
  private readonly q: {
    user: Database.Statement<[string], { hash: string }>;
    userExists: Database.Statement<[string], { one: number }>;
    alias: Database.Statement<[string], { targets: string }>;
    insertUser: Database.Statement<[string, string, string, string]>;
    upsertUser: Database.Statement<[string, string, string, string]>;
    updateHash: Database.Statement<[string, string, string]>;
    rehash: Database.Statement<[string, string, string, string]>;
    deleteUser: Database.Statement<[string]>;
    listUsers: Database.Statement<[], { address: string; created: string }>;
    dumpUsers: Database.Statement<[], { address: string; hash: string; created: string }>;
    insertAlias: Database.Statement<[string, string, string]>;
    upsertAlias: Database.Statement<[string, string, string]>;
    deleteAlias: Database.Statement<[string]>;
    listAliases: Database.Statement<[], { address: string; targets: string; created: string }>;
    settings: Database.Statement<[string], { settings: string }>;
    putSettings: Database.Statement<[string, string, string]>;
    deleteSettings: Database.Statement<[string]>;
    allSettings: Database.Statement<[], { address: string; settings: string }>;
  };

  constructor(private readonly db: Database.Database) {
    this.q = {
      user: db.prepare('SELECT hash FROM users WHERE address = ?'),
      userExists: db.prepare('SELECT 1 AS one FROM users WHERE address = ?'),
      alias: db.prepare('SELECT targets FROM aliases WHERE address = ?'),
      insertUser: db.prepare('INSERT INTO users (address, hash, created, updated) VALUES (?, ?, ?, ?)'),
      upsertUser: db.prepare('INSERT OR REPLACE INTO users (address, hash, created, updated) VALUES (?, ?, ?, ?)'),
      updateHash: db.prepare('UPDATE users SET hash = ?, updated = ? WHERE address = ?'),
      rehash: db.prepare('UPDATE users SET hash = ?, updated = ? WHERE address = ? AND hash = ?'),
      deleteUser: db.prepare('DELETE FROM users WHERE address = ?'),
      listUsers: db.prepare('SELECT address, created FROM users ORDER BY address'),
      dumpUsers: db.prepare('SELECT address, hash, created FROM users ORDER BY address'),
      insertAlias: db.prepare('INSERT INTO aliases (address, targets, created) VALUES (?, ?, ?)'),
      upsertAlias: db.prepare('INSERT OR REPLACE INTO aliases (address, targets, created) VALUES (?, ?, ?)'),
      deleteAlias: db.prepare('DELETE FROM aliases WHERE address = ?'),
      listAliases: db.prepare('SELECT address, targets, created FROM aliases ORDER BY address'),
      settings: db.prepare('SELECT settings FROM user_settings WHERE address = ?'),
      putSettings: db.prepare('INSERT INTO user_settings (address, settings, updated) VALUES (?, ?, ?) ON CONFLICT(address) DO UPDATE SET settings = excluded.settings, updated = excluded.updated'),
      deleteSettings: db.prepare('DELETE FROM user_settings WHERE address = ?'),
      allSettings: db.prepare('SELECT address, settings FROM user_settings ORDER BY address'),
    };
  }

  userExists(addr: string): boolean {
    return this.q.userExists.get(addr) !== undefined;
  }
  aliasTargets(addr: string): string | undefined {
    return this.q.alias.get(addr)?.targets;
  }
  settings(addr: string): string | undefined {
    return this.q.settings.get(addr)?.settings;
  }
  allSettings(): { address: string; settings: string }[] {
    return this.q.allSettings.all();
  }
  listUsers(): { address: string; created: string }[] {
    return this.q.listUsers.all().map((r) => ({ address: r.address, created: r.created }));
  }
  listAliases(): { address: string; targets: string }[] {
    return this.q.listAliases.all().map((r) => ({ address: r.address, targets: r.targets }));
  }
  async userHash(addr: string): Promise<string | undefined> {
    return this.q.user.get(addr)?.hash;
  }
  async insertUser(addr: string, hash: string, ts: string): Promise<'ok' | 'user' | 'alias'> {
    // Under the write lock: another process may have taken the name since the caller looked.
    return this.db.transaction(() => {
      const taken = this.holder(addr);
      if (taken) return taken;
      this.q.insertUser.run(addr, hash, ts, ts);
      return 'ok' as const;
    }).immediate();
  }
  async updateHash(addr: string, hash: string, ts: string): Promise<boolean> {
    return this.q.updateHash.run(hash, ts, addr).changes > 0;
  }
  async rehash(addr: string, fresh: string, ts: string, old: string): Promise<void> {
    this.q.rehash.run(fresh, ts, addr, old);
  }
  async deleteUser(addr: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.q.deleteUser.run(addr).changes === 0) return false;
      this.q.deleteSettings.run(addr);
      return true;
    })();
  }
  async insertAlias(addr: string, targetsJson: string, ts: string): Promise<'ok' | 'user' | 'alias'> {
    return this.db.transaction(() => {
      const taken = this.holder(addr);
      if (taken) return taken;
      this.q.insertAlias.run(addr, targetsJson, ts);
      return 'ok' as const;
    }).immediate();
  }
  async deleteAlias(addr: string): Promise<boolean> {
    return this.q.deleteAlias.run(addr).changes > 0;
  }
  async putSettings(addr: string, json: string, ts: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (!this.userExists(addr)) return false;
      this.q.putSettings.run(addr, json, ts);
      return true;
    })();
  }
  async dump(): Promise<AccountsDump> {
    return {
      users: this.q.dumpUsers.all(),
      aliases: this.q.listAliases.all().map((r) => ({ address: r.address, targets: parseTargets(r.targets), created: r.created })),
      settings: this.q.allSettings.all(),
    };
  }
  async restore(dump: AccountsDump): Promise<void> {
    const ts = new Date().toISOString();
    this.db.transaction(() => {
      for (const u of dump.users) {
        this.q.deleteAlias.run(u.address);
        this.q.upsertUser.run(u.address, u.hash, u.created, ts);
      }
      for (const a of dump.aliases) {
        if (this.q.deleteUser.run(a.address).changes) this.q.deleteSettings.run(a.address);
        this.q.upsertAlias.run(a.address, JSON.stringify(a.targets), a.created);
      }
      for (const s of dump.settings) if (this.userExists(s.address)) this.q.putSettings.run(s.address, s.settings, ts);
    }).immediate();
  }
  close(): void {
    if (this.db.open) this.db.close();
  }

  private holder(addr: string): 'user' | 'alias' | undefined {
    if (this.q.userExists.get(addr)) return 'user';
    if (this.q.alias.get(addr)) return 'alias';
    return undefined;
  }
}

export class AccountStore {
  private readonly hasher: PasswordHasher;
  private readonly now: () => Date;

  /** Over any backend: `AccountStore.open(file)` for the file, openAccountStore() (open.ts) for `store.*`. */
  constructor(private readonly backend: AccountBackend, options: AccountStoreOptions = {}) {
    this.hasher = options.hasher ?? scryptHasher(options.hashParams);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Opens (creating if needed) the account file, e.g. `accountsFile(config.data_dir)`. The
   * file is created mode 0600: it holds password hashes. Schema migrations run here.
   */
  static open(file: string, options: AccountStoreOptions = {}): AccountStore {
    const db = openSqliteFile(file, {
      busyTimeoutMs: options.busyTimeoutMs,
      migrations: MIGRATIONS,
      tooNew: (message) => new AccountError('SCHEMA', message),
    });
    return new AccountStore(new SqliteAccounts(db), options);
  }

  close(): void {
    this.backend.close();
  }

  // --- users --------------------------------------------------------------------------------

  /** Adds a user; refuses an invalid address, a weak password, or a name taken by a user or alias. */
  async addUser(address: string, password: string): Promise<void> {
    const addr = normalizeAddress(address);
    this.enforcePolicy(password, addr);
    this.assertNameFree(addr); // fail fast, before the slow hash
    const hash = await this.hasher.hash(password);
    const ts = this.now().toISOString();
    const taken = await this.backend.insertUser(addr, hash, ts); // checked again, atomically
    if (taken !== 'ok') throw duplicate(addr, taken);
  }

  /** Replaces a user's password (policy applies). */
  async setPassword(address: string, password: string): Promise<void> {
    const addr = normalizeAddress(address);
    this.enforcePolicy(password, addr);
    if (!this.backend.userExists(addr)) throw unknownUser(addr);
    const hash = await this.hasher.hash(password);
    if (!(await this.backend.updateHash(addr, hash, this.now().toISOString()))) throw unknownUser(addr); // deleted while we were hashing
  }

  async deleteUser(address: string): Promise<void> {
    const addr = normalizeAddress(address);
    if (!(await this.backend.deleteUser(addr))) throw unknownUser(addr);
  }

  // --- per-user spam settings ---------------------------------------------------------------

  /** The user's spam settings as stored (JSON text), or undefined when none were set. */
  getSettingsJson(address: string): string | undefined {
    const addr = tryNormalize(address);
    return addr === undefined ? undefined : this.backend.settings(addr);
  }

  /** Stores a user's spam settings (JSON text, validated by the caller); the user must exist. */
  async putSettingsJson(address: string, json: string): Promise<void> {
    const addr = normalizeAddress(address);
    if (!(await this.backend.putSettings(addr, json, this.now().toISOString()))) throw unknownUser(addr);
  }

  /** Every user's stored settings, for the gateway's in-memory copy. */
  allSettingsJson(): { address: string; settings: string }[] {
    return this.backend.allSettings();
  }

  /** All users, sorted by address. */
  listUsers(): { address: string; created: string }[] {
    return this.backend.listUsers();
  }

  /** True when `address` is a local user; false for unacceptable input (AccountError UNAVAILABLE when the backend cannot answer). */
  hasUser(address: string): boolean {
    const addr = tryNormalize(address);
    return addr !== undefined && this.backend.userExists(addr);
  }

  /**
   * Checks a login. An unknown (or unacceptable) address is verified against the dummy hash,
   * so it takes as long as a wrong password for a real user. After a successful login with a
   * hash made with older parameters, the password is re-hashed with the current ones. A backend
   * that cannot be read rejects with AccountError UNAVAILABLE: a temporary failure, never a
   * login without a checked password.
   */
  async authenticate(address: string, password: string): Promise<boolean> {
    const addr = tryNormalize(address);
    const hash = addr === undefined ? undefined : await this.backend.userHash(addr);
    if (addr === undefined || hash === undefined) {
      await this.hasher.verify(password, this.hasher.dummy());
      return false;
    }
    const ok = await this.hasher.verify(password, hash);
    if (ok && this.hasher.needsRehash(hash)) {
      try {
        const fresh = await this.hasher.hash(password);
        await this.backend.rehash(addr, fresh, this.now().toISOString(), hash);
      } catch {
        // The login itself succeeded; a failed upgrade (lock timeout, disk, Redis) is retried at the next one.
      }
    }
    return ok;
  }

  // --- aliases ------------------------------------------------------------------------------

  /**
   * Adds an alias delivering to `targets` (local users, other aliases or external addresses).
   * The alias name follows the user rules and may not be taken by a user or another alias.
   */
  async addAlias(address: string, targets: string[]): Promise<void> {
    const addr = normalizeAddress(address);
    if (!Array.isArray(targets) || targets.length === 0) {
      throw new AccountError('INVALID_TARGET', `alias ${addr}: at least one target is required`);
    }
    if (targets.length > MAX_ALIAS_TARGETS) {
      throw new AccountError('INVALID_TARGET', `alias ${addr}: at most ${MAX_ALIAS_TARGETS} targets`);
    }
    const normalized: string[] = [];
    for (const t of targets) {
      const n = parse(t, 'target').address;
      if (n === addr) throw new AccountError('INVALID_TARGET', `alias ${addr} cannot point to itself`);
      if (!normalized.includes(n)) normalized.push(n);
    }
    const taken = await this.backend.insertAlias(addr, JSON.stringify(normalized), this.now().toISOString());
    if (taken !== 'ok') throw duplicate(addr, taken);
  }

  async deleteAlias(address: string): Promise<void> {
    const addr = normalizeAddress(address);
    if (!(await this.backend.deleteAlias(addr))) {
      throw new AccountError('UNKNOWN_ALIAS', `no alias ${addr}`);
    }
  }

  /** All aliases, sorted by address; targets in the order given. */
  listAliases(): { address: string; targets: string[] }[] {
    return this.backend.listAliases().map((r) => ({ address: r.address, targets: parseTargets(r.targets) }));
  }

  // --- copying (store migrate) --------------------------------------------------------------

  /** Every user (with its hash), alias and setting. */
  exportAll(): Promise<AccountsDump> {
    return this.backend.dump();
  }

  /** Writes a dump over this store (same names overwritten, others kept). */
  importAll(dump: AccountsDump): Promise<void> {
    return this.backend.restore(dump);
  }

  // --- the RCPT path ------------------------------------------------------------------------

  /** What `address` is locally; undefined when neither user nor alias, or not acceptable. */
  lookup(address: string): LookupResult | undefined {
    const addr = tryNormalize(address);
    return addr === undefined ? undefined : this.lookupNormalized(addr);
  }

  /**
   * Resolves `address` into final local users and external addresses, following aliases
   * through aliases (at most MAX_ALIAS_DEPTH levels, each alias once, so loops end).
   * Undefined when `address` is neither user nor alias. A target in a local domain that is
   * neither user nor alias is dropped and listed in `unknown`.
   */
  expand(address: string, isLocalDomain: (domain: string) => boolean): Expansion | undefined {
    const start = tryNormalize(address);
    if (start === undefined) return undefined;
    const first = this.lookupNormalized(start);
    if (first === undefined) return undefined;
    const out: Expansion = { users: [], external: [], unknown: [] };
    if (first.kind === 'user') {
      out.users.push(start);
      return out;
    }
    const seen = new Set<string>([start]);
    const add = (list: string[], a: string) => {
      if (!list.includes(a)) list.push(a);
    };
    const walk = (targets: string[], depth: number): void => {
      for (const t of targets) {
        // Stored targets were validated on the way in; a row edited by hand is treated as unknown.
        const local = tryNormalize(t);
        const found = local === undefined ? undefined : this.lookupNormalized(local);
        if (found?.kind === 'user') {
          add(out.users, local!);
        } else if (found?.kind === 'alias') {
          if (seen.has(local!)) continue; // loop, or an alias reached twice: already expanded
          if (depth >= MAX_ALIAS_DEPTH) {
            add(out.unknown, local!);
            continue;
          }
          seen.add(local!);
          walk(found.targets, depth + 1);
        } else if (isLocalDomain(domainOf(t))) {
          add(out.unknown, t);
        } else {
          add(out.external, t);
        }
      }
    };
    walk(first.targets, 1);
    return out;
  }

  // --- internals ----------------------------------------------------------------------------

  private lookupNormalized(addr: string): LookupResult | undefined {
    if (this.backend.userExists(addr)) return { kind: 'user' };
    const a = this.backend.aliasTargets(addr);
    return a === undefined ? undefined : { kind: 'alias', targets: parseTargets(a) };
  }

  private assertNameFree(addr: string): void {
    if (this.backend.userExists(addr)) throw duplicate(addr, 'user');
    if (this.backend.aliasTargets(addr) !== undefined) throw duplicate(addr, 'alias');
  }

  private enforcePolicy(password: string, addr: string): void {
    if (typeof password !== 'string') throw new AccountError('WEAK_PASSWORD', 'password for ' + addr + ': not a string');
    const why = checkPasswordPolicy(password, addr);
    if (why !== undefined) throw new AccountError('WEAK_PASSWORD', `password for ${addr} refused: ${why}`);
  }
}

function duplicate(addr: string, kind: 'user' | 'alias'): AccountError {
  return new AccountError('DUPLICATE', `${addr} is already ${kind === 'user' ? 'a user' : 'an alias'}`);
}

/** True when `err` says the accounts could not be read (Redis down): answer "try again later". */
export function isAccountsUnavailable(err: unknown): boolean {
  return err instanceof AccountError && err.code === 'UNAVAILABLE';
}

function unknownUser(addr: string): AccountError {
  return new AccountError('UNKNOWN_USER', `no user ${addr}`);
}

function parseTargets(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
