// Local domain lists (uri.block_files, uri.allow_files): one domain or IP per line, "#"
// comments; "example.com" is that host (and, being a registrable domain, every URI whose
// registrable domain it is), ".example.com" and "*.example.com" are example.com and every
// subdomain. (rbldnsd's dnset reads "*.x" as subdomains only; here both prefixes include x,
// because a blocklist entry that missed the bare domain would surprise.)
//
// Reloaded as src/dns/zones/zone-mirror.ts reloads a zone: the directory is watched (a rename
// is seen), a periodic stat is the fallback; the new file is parsed beside the old data and
// swapped in with one assignment. A file that cannot be read, changes while being read, is
// empty, or has no valid line but some bad ones keeps the old data. Bad lines are logged with
// file:line and skipped.
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { domainToASCII } from 'node:url';
import type { Logger } from '../../log.js';
import { hostAndParents, type HostInfo } from './host.js';

export interface BadLine {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

/** Parsed entries of one file: exact names and names covering their subdomains. */
export interface DomainSet {
  readonly exact: ReadonlySet<string>;
  readonly tree: ReadonlySet<string>;
  readonly entries: number;
  readonly bad: readonly BadLine[];
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
const MAX_BAD_KEPT = 100;

/** Parses a list file's text; never throws (bad lines are returned, at most 100 kept). */
export function parseDomainList(text: string, file: string): DomainSet {
  const exact = new Set<string>();
  const tree = new Set<string>();
  const bad: BadLine[] = [];
  let entries = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const content = lines[i]!.replace(/(^|\s)#.*$/, '').trim();
    if (!content) continue;
    const fail = (reason: string) => {
      if (bad.length < MAX_BAD_KEPT) bad.push({ file, line: i + 1, text: lines[i]!.slice(0, 200), reason });
    };
    if (/\s/.test(content)) {
      fail('one domain per line expected');
      continue;
    }
    let name = content.toLowerCase();
    let wild = false;
    if (name.startsWith('*.')) [name, wild] = [name.slice(2), true];
    else if (name.startsWith('.')) [name, wild] = [name.slice(1), true];
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (net.isIP(name)) {
      if (wild) {
        fail(`"${content}": an IP address has no subdomains`);
        continue;
      }
      exact.add(name);
      entries++;
      continue;
    }
    const ascii = /^[\x21-\x7e]+$/.test(name) ? name : domainToASCII(name);
    const labels = ascii ? ascii.split('.') : [];
    if (!ascii || ascii.length > 253 || labels.length < 1 || !labels.every((l) => LABEL.test(l))) {
      fail(`"${content}" is not a domain name, an IP address, .domain or *.domain`);
      continue;
    }
    (wild ? tree : exact).add(ascii);
    entries++;
  }
  return { exact, tree, entries, bad };
}

/** The entry of `set` that covers a host, or undefined. */
export function matchDomainSet(set: DomainSet, info: HostInfo): string | undefined {
  const names = hostAndParents(info);
  if (set.exact.has(names[0]!)) return names[0];
  // A registrable-domain entry covers its subdomains' URIs (the domain is what lists name).
  if (!info.isIp && set.exact.has(info.domain)) return info.domain;
  for (const n of names) if (set.tree.has(n)) return `.${n}`;
  // A wildcard above the registrable domain ("*.co.uk" would be silly, "*.example" is not).
  if (!info.isIp) {
    let h = info.domain;
    while (h.includes('.')) {
      h = h.slice(h.indexOf('.') + 1);
      if (set.tree.has(h)) return `.${h}`;
    }
  }
  return undefined;
}

interface Sig {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}
const sigOf = (st: fs.Stats): Sig => ({ mtimeMs: st.mtimeMs, size: st.size, ino: st.ino });
const sameSig = (a: Sig | undefined, b: Sig | undefined) => !!a && !!b && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;

export interface DomainListFileOptions {
  readonly logger?: Logger;
  /** Fallback check of the file, ms (default 30 s). */
  readonly pollMs?: number;
  /** Quiet time after a change event before reading (default 300 ms). */
  readonly settleMs?: number;
  /** Watch the file (default true). */
  readonly watch?: boolean;
}

/** One list file, kept current. */
export class DomainListFile {
  private data: DomainSet | undefined;
  private sig: Sig | undefined;
  private refused: Sig | undefined;
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private closed = false;
  /** Successful loads, for tests and stats. */
  loads = 0;
  lastError: string | undefined;

  constructor(readonly file: string, private readonly opts: DomainListFileOptions = {}) {}

  /**
   * Loads the file now (synchronously, at start-up) and starts watching it. Throws when the
   * first load fails: a configured list that cannot be read is a start-up error.
   */
  start(): this {
    if (!this.reload()) throw new Error(`uri list ${this.file}: ${this.lastError}`);
    if (this.opts.watch !== false) this.watch();
    return this;
  }

  get set(): DomainSet | undefined {
    return this.data;
  }

  /** Reads the file if it changed; keeps the old data when the new file is unusable. Returns whether data is loaded. */
  reload(force = false): boolean {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch (err) {
      return this.fail(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    if (!force && (sameSig(sigOf(st), this.sig) || sameSig(sigOf(st), this.refused))) return !!this.data;
    let text: string;
    let sig: Sig;
    try {
      const fd = fs.openSync(this.file, 'r');
      try {
        sig = sigOf(fs.fstatSync(fd));
        text = fs.readFileSync(fd, 'utf8');
        if (!sameSig(sig, sigOf(fs.fstatSync(fd)))) {
          this.schedule();
          return this.fail(`${this.file} changed while being read (write the file under another name, then rename)`);
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      return this.fail(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    const parsed = parseDomainList(text, this.file);
    for (const b of parsed.bad.slice(0, 10)) {
      this.opts.logger?.warn({ event: 'uri_list_bad_line', file: b.file, line: b.line, text: b.text, reason: b.reason }, `${b.file}:${b.line}: ${b.reason}`);
    }
    if (parsed.bad.length > 10) this.opts.logger?.warn({ event: 'uri_list_bad_lines', file: this.file, bad: parsed.bad.length }, `${this.file}: ${parsed.bad.length} bad lines (first 10 logged)`);
    const old = this.data;
    // An empty file is most often one caught half-written; all-bad lines, a wrong file.
    if (old && old.entries > 0 && parsed.entries === 0 && (text.length === 0 || parsed.bad.length > 0)) {
      this.refused = sig;
      return this.fail(`${this.file} has no valid entry (${parsed.bad.length} bad lines${text.length ? '' : ', empty file'}): still using the ${old.entries} entries loaded before`);
    }
    this.data = parsed;
    this.sig = sig;
    this.refused = undefined;
    this.lastError = undefined;
    this.loads++;
    this.opts.logger?.info({ event: 'uri_list_loaded', file: this.file, entries: parsed.entries, bad: parsed.bad.length }, `uri list ${this.file}: ${parsed.entries} entries`);
    return true;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.poll);
    clearTimeout(this.settle);
  }

  private fail(reason: string): boolean {
    if (reason !== this.lastError) {
      this.opts.logger?.error({ event: 'uri_list_load_failed', file: this.file, err: reason, serving: this.data?.entries ?? 0 }, reason);
    }
    this.lastError = reason;
    return !!this.data;
  }

  private watch(): void {
    this.poll ??= setInterval(() => {
      if (!this.watcher) this.watchDir();
      this.reload();
    }, this.opts.pollMs ?? 30_000).unref();
    this.watchDir();
  }

  private watchDir(): void {
    if (this.closed || this.watcher) return;
    const base = path.basename(this.file);
    try {
      // The directory: a rename replaces the file's inode and a watch on the file with it.
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, (_e, name) => {
        if (!name || name.toString() === base) this.schedule();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.reload(), this.opts.settleMs ?? 300).unref();
  }
}

/** Several list files answering as one. */
export class DomainLists {
  constructor(readonly files: readonly DomainListFile[]) {}

  static start(files: readonly string[], opts: DomainListFileOptions = {}): DomainLists {
    const started: DomainListFile[] = [];
    try {
      for (const f of files) started.push(new DomainListFile(f, opts).start());
    } catch (err) {
      for (const s of started) s.close();
      throw err;
    }
    return new DomainLists(started);
  }

  /** "file: entry" of the first file whose entries cover the host, or undefined. */
  match(info: HostInfo): { file: string; entry: string } | undefined {
    for (const f of this.files) {
      const set = f.set;
      const entry = set && matchDomainSet(set, info);
      if (entry) return { file: f.file, entry };
    }
    return undefined;
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}
