// A small tmpfs mounted by the test (as root) where the gateway keeps its queue or its
// Maildirs, so that "disk full" and "out of inodes" are the kernel's real ENOSPC, not a mock.
// Not root (or no right to mount): the test is skipped with the reason; in CI strict mode
// (CI=true or PORTCULLIS_TEST_STRICT=1) it fails instead, as the other tool checks do.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { strict } from '../helpers/clients.js';

const run = promisify(execFile);

/** Why tmpfs cannot be mounted here, or undefined when it can (checked once per process). */
let problem: string | undefined | null = null;
async function mountProblem(): Promise<string | undefined> {
  if (problem !== null) return problem;
  if (process.getuid?.() !== 0) problem = 'needs root to mount a tmpfs (run the suite as root, as CI does)';
  else {
    const probe = fs.mkdtempSync('/tmp/portcullis-tmpfs-probe-');
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,nr_inodes=16', 'tmpfs', probe]);
      await run('umount', [probe]);
      problem = undefined;
    } catch (err) {
      problem = `cannot mount a tmpfs here: ${(err as Error).message.trim()}`;
    }
    fs.rmSync(probe, { recursive: true, force: true });
  }
  return problem;
}

/** False (and the test skipped) when no tmpfs can be mounted; throws in strict mode. */
export async function needTmpfs(t: TestContext | { skip(msg: string): void }): Promise<boolean> {
  const p = await mountProblem();
  if (!p) return true;
  if (strict) throw new Error(`fault tests need a tmpfs: ${p}`);
  t.skip(p);
  return false;
}

export interface Tmpfs {
  readonly dir: string;
  /** Fills the file system with data files until write() fails with ENOSPC. */
  fillSpace(): void;
  /** Creates empty files until no inode is left. */
  fillInodes(): void;
  /** Removes what fillSpace and fillInodes made. */
  free(): void;
  freeBytes(): number;
  freeInodes(): number;
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `size` (e.g. "4m") and `inodes` at `dir` (created if missing). */
export async function mountTmpfs(dir: string, size: string, inodes: number): Promise<Tmpfs> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size},nr_inodes=${inodes},mode=0700`, 'tmpfs', dir]);
  const filler = path.join(dir, '.filler');
  let mounted = true;
  return {
    dir,
    fillSpace() {
      fs.mkdirSync(filler, { recursive: true });
      const chunk = Buffer.alloc(64 * 1024, 0x66);
      // Several files: the space freed by one write that fails half way is taken by a smaller one.
      for (let k = 0; ; k++) {
        let fd: number;
        try {
          fd = fs.openSync(path.join(filler, `space-${k}`), 'w');
        } catch {
          return;
        }
        let wrote = false;
        try {
          for (let buf = chunk; buf.length >= 512;) {
            try {
              fs.writeSync(fd, buf);
              wrote = true;
            } catch {
              buf = buf.subarray(0, buf.length >> 1);
            }
          }
        } finally {
          fs.closeSync(fd);
        }
        if (!wrote) return;
      }
    },
    fillInodes() {
      fs.mkdirSync(filler, { recursive: true });
      for (let k = 0; ; k++) {
        try {
          fs.closeSync(fs.openSync(path.join(filler, `inode-${k}`), 'w'));
        } catch {
          return;
        }
      }
    },
    free() {
      fs.rmSync(filler, { recursive: true, force: true });
    },
    freeBytes() {
      const st = fs.statfsSync(dir);
      return st.bavail * st.bsize;
    },
    freeInodes() {
      return fs.statfsSync(dir).ffree;
    },
    async unmount() {
      if (!mounted) return;
      mounted = false;
      await run('umount', ['-l', dir]).catch(() => undefined);
    },
  };
}
