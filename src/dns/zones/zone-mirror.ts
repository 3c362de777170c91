// A local mirror of one DNS list (an rbldnsd zone file), answered from memory — and the set of
// all configured mirrors. The resolver asks the set before the network (types.ts ZoneAnswerer).
//
// Reload: the file's directory is watched (fs.watch sees the rename of an rsync or
// "write tmp && mv"), with a periodic check of mtime/size/inode as a fallback for filesystems
// where watching is unreliable. A new file is parsed into a new LoadedZone beside the old one
// and swapped in with one assignment only when it parsed, so a query sees either the old data or
// the new, never a mix. A file that cannot be read, changes while being read, or yields no entry
// where the old data had some keeps the old data: a broken file never empties a loaded zone.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Logger } from '../../log.js';
import type { Lookup, ZoneAnswerer } from '../types.js';
import { parseZoneAsync, type LoadedZone, type MalformedLine, type ZoneType } from './zone.js';

const gunzip = promisify(zlib.gunzip);

/** One entry of config dns.zones (ttl in ms, as the schema gives it). */
export interface ZoneConfig {
  readonly name: string;
  readonly type: ZoneType;
  readonly file: string;
  readonly ttl: number;
}

export interface ZoneMirrorOptions extends ZoneConfig {
  readonly logger?: Logger;
  /** Called for every malformed line of every load (the log shows only the first few). */
  readonly onMalformed?: (line: MalformedLine) => void;
  /** Fallback check of the file, ms (default 30 s; rbldnsd checks every minute). */
  readonly pollMs?: number;
  /** Quiet time after a change event before reading, so a file being written is read once. */
  readonly settleMs?: number;
  /** Watch the file after load() (default true). */
  readonly watch?: boolean;
  readonly now?: () => number;
}

export interface ZoneStats {
  readonly name: string;
  readonly type: ZoneType;
  readonly file: string;
  readonly loaded: boolean;
  /** Entry lines of the data being served. */
  readonly entries: number;
  /** Duration of the last successful load (read, parse, build), ms. */
  readonly loadMs: number;
  readonly loadedAt: string | undefined;
  /** Malformed lines in the data being served. */
  readonly malformed: number;
  readonly loads: number;
  readonly failures: number;
  /** Why the last load failed, when it did (cleared by the next success). */
  readonly lastError: string | undefined;
  readonly expired: boolean;
}

/** Malformed lines logged per load; the rest are counted (rbldnsd stops at 5). */
const LOGGED_PER_LOAD = 10;

interface FileSig {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

const sigOf = (st: fs.Stats): FileSig => ({ mtimeMs: st.mtimeMs, size: st.size, ino: st.ino });
const sameSig = (a: FileSig | undefined, b: FileSig | undefined) =>
  !!a && !!b && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;

/** Lowercases (ASCII) and drops a trailing dot. */
export function normaliseName(name: string): string {
  let n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (/[A-Z]/.test(n)) n = n.toLowerCase();
  return n;
}

/** The part of `name` below `origin` ('' for the origin itself), or undefined when not under it. */
export function relativeName(name: string, origin: string): string | undefined {
  const n = normaliseName(name);
  if (n === origin) return '';
  const cut = n.length - origin.length - 1;
  if (cut > 0 && n.endsWith(origin) && n.charCodeAt(cut) === 46) return n.slice(0, cut);
  return undefined;
}

/** TXT text is kept as the file's bytes; checks get it decoded as UTF-8. */
function utf8(latin1: string): string {
  return /[\x80-\xff]/.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
}

export class ZoneMirror implements ZoneAnswerer {
  readonly origin: string;
  private zone: LoadedZone | undefined;
  private zoneSig: FileSig | undefined;
  /** The file last refused, so that the fallback check does not parse it again and again. */
  private refusedSig: FileSig | undefined;
  private loadMs = 0;
  private loadedAt: Date | undefined;
  private loads = 0;
  private failures = 0;
  private lastError: string | undefined;
  private inflight: Promise<boolean> | undefined;
  private recheck: 'no' | 'check' | 'force' = 'no';
  private watcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: ZoneMirrorOptions) {
    this.origin = normaliseName(opts.name);
    this.now = opts.now ?? Date.now;
  }

  get file(): string {
    return this.opts.file;
  }

  /** Loads the file (resolves false when it could not be; the mirror then answers "error") and starts watching it. */
  async load(): Promise<boolean> {
    const ok = await this.check(true);
    if (this.opts.watch !== false) this.startWatching();
    return ok;
  }

  /** Re-reads the file now, changed or not. */
  reload(): Promise<boolean> {
    return this.check(true);
  }

  /** The data being served (for the zone server), or undefined before a first successful load. */
  snapshot(): LoadedZone | undefined {
    return this.zone;
  }

  answer(name: string, type: 'A'): Lookup<'A'> | undefined;
  answer(name: string, type: 'TXT'): Lookup<'TXT'> | undefined;
  answer(name: string, type: 'A' | 'TXT'): Lookup<'A'> | Lookup<'TXT'> | undefined;
  answer(name: string, type: 'A' | 'TXT'): Lookup<'A'> | Lookup<'TXT'> | undefined {
    const rel = relativeName(name, this.origin);
    if (rel === undefined) return undefined;
    const z = this.zone;
    if (!z) return { status: 'error', code: 'servfail', reason: `zone ${this.origin} is not loaded${this.lastError ? `: ${this.lastError}` : ''}`, source: 'zone' };
    if (z.expired(this.now())) return { status: 'error', code: 'servfail', reason: `zone ${this.origin}: data expired ($TIMESTAMP)`, source: 'zone' };
    // The origin itself exists (it would carry SOA/NS) but lists nothing.
    if (rel === '') return { status: 'nodata', source: 'zone' };
    const hit = z.lookup(rel);
    if (!hit) return { status: 'nxdomain', source: 'zone' };
    if (type === 'A') return { status: 'ok', records: z.aRecords(hit), ttl: z.ttl, source: 'zone' };
    const txt = z.txtRecords(hit);
    if (!txt.length) return { status: 'nodata', source: 'zone' };
    return { status: 'ok', records: txt.map((t) => [utf8(t)]), ttl: z.ttl, source: 'zone' };
  }

  stats(): ZoneStats {
    const z = this.zone;
    return {
      name: this.origin,
      type: this.opts.type,
      file: this.opts.file,
      loaded: !!z,
      entries: z?.entries ?? 0,
      loadMs: this.loadMs,
      loadedAt: this.loadedAt?.toISOString(),
      malformed: z?.malformed ?? 0,
      loads: this.loads,
      failures: this.failures,
      lastError: this.lastError,
      expired: !!z && z.expired(this.now()),
    };
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.pollTimer);
    clearTimeout(this.settleTimer);
  }

  /** One load at a time; a request during a load is remembered and served after it. */
  private async check(force = false): Promise<boolean> {
    if (this.inflight) {
      if (force || this.recheck === 'no') this.recheck = force ? 'force' : 'check';
      return this.inflight;
    }
    this.inflight = this.loadIfChanged(force);
    try {
      return await this.inflight;
    } finally {
      this.inflight = undefined;
      const again = this.recheck;
      this.recheck = 'no';
      if (again !== 'no' && !this.closed) void this.check(again === 'force');
    }
  }

  private async loadIfChanged(force: boolean): Promise<boolean> {
    const { file } = this.opts;
    let sig: FileSig;
    try {
      sig = sigOf(await fs.promises.stat(file));
    } catch (err) {
      return this.fail(`cannot read ${file}: ${(err as Error).message}`);
    }
    if (!force && (sameSig(sig, this.zoneSig) || sameSig(sig, this.refusedSig))) return !!this.zone;
    return this.loadFile();
  }

  private async loadFile(): Promise<boolean> {
    const { file, type } = this.opts;
    const started = performance.now();
    let bytes: Buffer;
    let sig: FileSig;
    try {
      const fh = await fs.promises.open(file, 'r');
      try {
        sig = sigOf(await fh.stat());
        bytes = await fh.readFile();
        // rbldnsd's rule: a file rewritten in place while being read is not trusted; the
        // next change event (or check) reads it again once it is complete.
        if (!sameSig(sig, sigOf(await fh.stat()))) {
          this.scheduleCheck();
          return this.fail(`${file} changed while being read (write zone files under another name, then rename)`);
        }
      } finally {
        await fh.close();
      }
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
    } catch (err) {
      return this.fail(`cannot read ${file}: ${(err as Error).message}`);
    }
    let logged = 0;
    const onMalformed = (m: MalformedLine) => {
      this.opts.onMalformed?.(m);
      if (++logged <= LOGGED_PER_LOAD) {
        this.opts.logger?.warn({ event: 'zone_malformed_line', zone: this.origin, file: m.file, line: m.line, text: m.text, reason: m.reason }, `${m.file}:${m.line}: ${m.reason}`);
      }
    };
    let zone: LoadedZone;
    try {
      zone = await parseZoneAsync(bytes, { type, file, defaultTtl: Math.round(this.opts.ttl / 1000), now: this.now(), fileTime: Math.floor(sig.mtimeMs / 1000), onMalformed });
    } catch (err) {
      this.refusedSig = sig;
      return this.fail(`${file}: ${(err as Error).message}`);
    }
    if (logged > LOGGED_PER_LOAD) {
      this.opts.logger?.warn({ event: 'zone_malformed_lines', zone: this.origin, file, malformed: logged, logged: LOGGED_PER_LOAD }, `${file}: ${logged} malformed lines skipped (first ${LOGGED_PER_LOAD} logged)`);
    }
    if (this.closed) return false;
    const old = this.zone;
    if (zone.entries === 0 && old && old.entries > 0) {
      this.refusedSig = sig;
      return this.fail(`${file} has no valid entry (${zone.malformed} malformed lines): still serving the ${old.entries} entries loaded before`);
    }
    this.zone = zone;
    this.zoneSig = sig;
    this.refusedSig = undefined;
    this.loadMs = performance.now() - started;
    this.loadedAt = new Date(this.now());
    this.loads++;
    this.lastError = undefined;
    this.opts.logger?.info(
      { event: 'zone_loaded', zone: this.origin, type, file, entries: zone.entries, malformed: zone.malformed, ms: Math.round(this.loadMs) },
      `zone ${this.origin} loaded: ${zone.entries} entries in ${Math.round(this.loadMs)} ms`,
    );
    return true;
  }

  private fail(reason: string): boolean {
    this.failures++;
    // A missing file is seen at every check: log it once, until something changes.
    if (reason !== this.lastError) {
      this.opts.logger?.error({ event: 'zone_load_failed', zone: this.origin, file: this.opts.file, err: reason, serving: this.zone?.entries ?? 0 }, `zone ${this.origin}: ${reason}`);
    }
    this.lastError = reason;
    return false;
  }

  private startWatching(): void {
    if (this.closed) return;
    this.pollTimer ??= setInterval(() => {
      if (!this.watcher) this.watchDir();
      void this.check();
    }, this.opts.pollMs ?? 30_000).unref();
    this.watchDir();
  }

  private watchDir(): void {
    if (this.closed || this.watcher) return;
    const base = path.basename(this.opts.file);
    try {
      // The directory, not the file: a rename replaces the file's inode and a watch on it.
      this.watcher = fs.watch(path.dirname(this.opts.file), { persistent: false }, (_event, filename) => {
        if (!filename || filename.toString() === base) this.scheduleCheck();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // No directory (yet): the periodic check carries on and tries again.
      this.watcher = undefined;
    }
  }

  private scheduleCheck(): void {
    if (this.closed) return;
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.check(), this.opts.settleMs ?? 300).unref();
  }
}

export interface ZoneSetOptions {
  readonly logger?: Logger;
  readonly onMalformed?: (line: MalformedLine) => void;
  readonly pollMs?: number;
  readonly settleMs?: number;
  readonly watch?: boolean;
  readonly now?: () => number;
}

/** All configured mirrors; answers for a name from the mirror with the longest matching origin. */
export class ZoneSet implements ZoneAnswerer {
  private readonly byLength: readonly ZoneMirror[];

  constructor(readonly mirrors: readonly ZoneMirror[]) {
    const seen = new Set<string>();
    for (const m of mirrors) {
      if (seen.has(m.origin)) throw new Error(`dns.zones: zone "${m.origin}" is configured twice`);
      seen.add(m.origin);
    }
    // Longest origin first, so that a mirror of sub.bl.test wins over one of bl.test.
    this.byLength = [...mirrors].sort((a, b) => b.origin.length - a.origin.length);
  }

  static fromConfig(zones: readonly ZoneConfig[], opts: ZoneSetOptions = {}): ZoneSet {
    return new ZoneSet(zones.map((z) => new ZoneMirror({ ...opts, ...z })));
  }

  /** Loads every mirror, one after the other (one zone's memory peak at a time). */
  async load(): Promise<void> {
    for (const m of this.mirrors) await m.load();
  }

  find(name: string): ZoneMirror | undefined {
    const n = normaliseName(name);
    for (const m of this.byLength) if (relativeName(n, m.origin) !== undefined) return m;
    return undefined;
  }

  answer(name: string, type: 'A' | 'TXT'): Lookup<'A'> | Lookup<'TXT'> | undefined {
    return this.find(name)?.answer(name, type);
  }

  stats(): ZoneStats[] {
    return this.mirrors.map((m) => m.stats());
  }

  close(): void {
    for (const m of this.mirrors) m.close();
  }
}
