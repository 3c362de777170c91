// 7z, rar, cab, iso, cpio, and tar inside xz/bzip2 through libarchive's bsdtar (Debian
// libarchive-tools): bsdtar converts the archive into a pax stream on its stdout
// (`bsdtar -cf - --format pax @archive`), which TarParser reads entry by entry with the same
// bounds as every other format. The child runs with a time limit, an address-space limit
// (ulimit -v: LZMA dictionaries can ask for gigabytes), in its own session (no terminal to ask a
// passphrase on), and is killed as soon as its output passes the byte budget. Encrypted 7z/rar
// content cannot be read by libarchive 3.6 (it says "encrypted, but currently not supported");
// that is reported as `encrypted`, never as corrupt.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TarError, TarParser, type TarEntry } from './archive-tar.js';

export interface BsdtarOptions {
  /** Path of the bsdtar binary. */
  readonly bsdtar: string;
  /** Content kept per entry. */
  readonly keep: number;
  /** Total bytes of pax output accepted before bsdtar is killed. */
  readonly maxBytes: number;
  /** Entries accepted before bsdtar is killed. */
  readonly maxEntries: number;
  readonly timeoutMs: number;
  /** Address-space limit of the child, in MiB (default 512). */
  readonly memoryMiB?: number;
  /** Where the archive is written for bsdtar to read (7z needs to seek); default os.tmpdir(). */
  readonly tmpDir?: string;
  /** Aborting stops bsdtar as the timeout does. */
  readonly signal?: AbortSignal;
}

export type BsdtarStop = 'bytes' | 'entries' | 'time';

export interface BsdtarResult {
  /** Why bsdtar was stopped early, when it was. */
  readonly stopped?: BsdtarStop;
  /** Some entries are encrypted (libarchive cannot read them, or asked for a passphrase). */
  readonly encrypted: boolean;
  /** bsdtar failed for another reason (damaged, truncated, unsupported): its message. */
  readonly error?: string;
  /** Bytes of pax output read. */
  readonly bytes: number;
  /** When the content is encrypted and no entry could be read: the entry names, from the index. */
  readonly names?: readonly string[];
}

/**
 * Runs bsdtar over `archive` and calls `onEntry` for each entry, in order (bsdtar waits while
 * onEntry runs: the pipe is the backpressure). Never throws for a bad archive; throws only when
 * bsdtar cannot be started (ENOENT…), so the caller can say "not inspected".
 */
export async function readWithBsdtar(
  archive: Uint8Array,
  opts: BsdtarOptions,
  onEntry: (entry: TarEntry) => Promise<void> | void,
): Promise<BsdtarResult> {
  const dir = await fs.promises.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'portcullis-arc-'));
  const file = path.join(dir, 'archive');
  try {
    await fs.promises.writeFile(file, archive, { mode: 0o600 });
    return await run(file, dir, opts, onEntry);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function run(file: string, cwd: string, opts: BsdtarOptions, onEntry: (entry: TarEntry) => Promise<void> | void): Promise<BsdtarResult> {
  const memKiB = Math.max(64, opts.memoryMiB ?? 512) * 1024;
  // sh applies the limit, then becomes bsdtar ("$0" is the binary, "$@" its arguments).
  const child = spawn('/bin/sh', ['-c', `ulimit -v ${memKiB} 2>/dev/null; exec "$0" "$@"`, opts.bsdtar, '-cf', '-', '--format', 'pax', `@${file}`], {
    cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  await spawned;
  let stderr = '';
  let encrypted = false;
  let stopped: BsdtarStop | undefined;
  const kill = () => {
    // The child is a process-group leader (detached): end the group we started, by its id.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
    // libarchive prompts for a passphrase (in a loop when there is no terminal): stop it.
    if (/passphrase/i.test(s)) {
      encrypted = true;
      kill();
    }
    if (/encrypted/i.test(s)) encrypted = true;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const onTime = () => {
    stopped ??= 'time';
    kill();
  };
  const timer = setTimeout(onTime, opts.timeoutMs);
  opts.signal?.addEventListener('abort', onTime, { once: true });
  if (opts.signal?.aborted) onTime();
  const parser = new TarParser(opts.keep);
  let bytes = 0;
  let entries = 0;
  let parseError: string | undefined;
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      if (stopped) break;
      bytes += chunk.length;
      if (bytes > opts.maxBytes) {
        stopped = 'bytes';
        kill();
        break;
      }
      let done: TarEntry[];
      try {
        done = parser.push(chunk);
      } catch (err) {
        parseError = err instanceof TarError ? err.message : String(err);
        kill();
        break;
      }
      for (const e of done) {
        if (++entries > opts.maxEntries) {
          stopped = 'entries';
          kill();
          break;
        }
        await onEntry(e);
      }
      if (stopped) break;
      // After the end marker bsdtar only pads its last record: read on until it exits.
    }
  } finally {
    child.stdout!.destroy();
  }
  const code = await exited;
  clearTimeout(timer);
  opts.signal?.removeEventListener('abort', onTime);
  if (code === 127) throw new Error(`cannot run ${opts.bsdtar}: ${stderr.trim() || 'not found'}`);
  if (!stopped && !parseError && code === 0) {
    try {
      parser.finish();
    } catch (err) {
      parseError = (err as Error).message;
    }
  }
  // libarchive's 7z reader fails on encrypted content without a message when it converts
  // ("bsdtar: (null)"); extracting to nowhere says what it is.
  if (!stopped && !encrypted && code !== 0 && /\(null\)|^\s*$/.test(stderr)) {
    encrypted = await probeEncrypted(file, cwd, opts, memKiB);
  }
  const names = encrypted && entries === 0 ? await listNames(file, cwd, opts, memKiB) : undefined;
  const message = stderr.replace(/Enter passphrase:/g, '').replace(/\s+/g, ' ').trim();
  const error = stopped ? undefined : parseError ?? (code !== 0 && !encrypted ? message || `bsdtar exited with ${code}` : undefined);
  return { stopped, encrypted, error, bytes, names };
}

/** Runs bsdtar with `args` (stdout captured up to `stdoutMax`), killing it on `stopOn` in stderr or at the timeout. */
async function runCapture(
  args: string[], cwd: string, opts: BsdtarOptions, memKiB: number, stdoutMax: number, stopOn?: RegExp,
): Promise<{ stdout: string; stderr: string; matched: boolean }> {
  const child = spawn('/bin/sh', ['-c', `ulimit -v ${memKiB} 2>/dev/null; exec "$0" "$@"`, opts.bsdtar, ...args], {
    cwd, stdio: ['ignore', stdoutMax > 0 ? 'pipe' : 'ignore', 'pipe'], detached: true, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
  });
  let stdout = '';
  let stderr = '';
  let matched = false;
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };
  const timer = setTimeout(kill, Math.min(opts.timeoutMs, 5_000));
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => {
    stdout += s;
    if (stdout.length > stdoutMax) kill();
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
    if (stopOn?.test(s)) {
      matched = true;
      kill();
    }
  });
  await new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  clearTimeout(timer);
  return { stdout: stdout.slice(0, stdoutMax), stderr, matched };
}

/** Extracts to nowhere (`bsdtar -xOf`) and says whether bsdtar complains of encryption. */
async function probeEncrypted(file: string, cwd: string, opts: BsdtarOptions, memKiB: number): Promise<boolean> {
  return (await runCapture(['-xOf', file], cwd, opts, memKiB, 0, /encrypted|passphrase/i)).matched;
}

/** Entry names (`bsdtar -tf`) of an archive whose content cannot be read; none when the index is encrypted too. */
async function listNames(file: string, cwd: string, opts: BsdtarOptions, memKiB: number): Promise<string[]> {
  const { stdout } = await runCapture(['-tf', file], cwd, opts, memKiB, 64 * 1024, /passphrase/i);
  return stdout.split('\n').filter((l) => l.length > 0).slice(0, opts.maxEntries);
}
