// Helpers of the integration tests: a real client program fed a message on stdin, and a raw
// socket dialogue for the requests no well-behaved client sends.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { runProgram, strict, type ProcResult } from '../helpers/clients.js';

/**
 * false when `cmd` runs; otherwise why the suite is skipped (scripts/test.sh installs `pkg`),
 * or an error in strict mode (CI), where a missing client must not pass for green.
 */
export function missingClient(cmd: string, pkg: string): string | false {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status === 0) return false;
  if (strict) throw new Error(`required tool missing: ${cmd} (apt-get install ${pkg})`);
  return `${cmd} is not installed (Debian package ${pkg}; scripts/test.sh installs it)`;
}

export type Run = ProcResult;

/** Runs a client program with `input` on stdin; never throws for a non-zero exit. */
export function run(cmd: string, args: string[], input: string | Buffer = '', timeoutMs = 30_000): Promise<Run> {
  return runProgram(cmd, args, { stdin: input, timeoutMs });
}

export const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

export interface RawOutcome {
  /** Everything the server sent before it closed (or before `waitMs`). */
  text: string;
  closed: boolean;
  ms: number;
}

/**
 * Sends `parts` (written one after another, `gapMs` apart) and collects the answer until the
 * server closes or `waitMs` passes. `halfClose` ends our side after the last part, as spamc does.
 */
export function rawDialogue(port: number, parts: (string | Buffer)[], { halfClose = true, waitMs = 10_000, gapMs = 0 } = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', async () => {
      for (const p of parts) {
        if (socket.destroyed) return;
        socket.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      if (halfClose && !socket.destroyed) socket.end();
    });
  });
}
