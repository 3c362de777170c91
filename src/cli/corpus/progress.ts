// One rewritten status line for long `scan` and `train` runs on a terminal: messages done, the
// rate, and the time left estimated from the bytes still to read (file sizes known up front, so
// it works for folders, mboxes and tarballs alike). Nothing is written when the stream is not a
// terminal: logs and pipes get the summary only.
import { listFiles } from './read.js';

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

/** The bytes of every file under `paths` (what the reader will open; a tarball counts packed). */
export async function corpusBytes(paths: readonly string[]): Promise<number> {
  let n = 0;
  for (const p of paths) for await (const f of listFiles(p)) n += f.size;
  return n;
}

export class Progress {
  private done = 0;
  private bytes = 0;
  private lastDraw = 0;
  private drawn = false;
  private readonly started: number;

  constructor(
    private readonly label: string,
    private readonly totalBytes: number | undefined,
    private readonly stream: ProgressStream = process.stderr,
    private readonly now: () => number = Date.now,
    /** Redraw at most this often (ms). */
    private readonly everyMs = 250,
  ) {
    this.started = now();
  }

  get active(): boolean {
    return !!this.stream.isTTY;
  }

  /** One message read (`bytes` of it). */
  tick(bytes: number): void {
    this.done++;
    this.bytes += bytes;
    if (!this.active) return;
    const t = this.now();
    if (t - this.lastDraw < this.everyMs) return;
    this.lastDraw = t;
    this.stream.write(`\r\x1b[K${this.line(t)}`);
    this.drawn = true;
  }

  /** The status text at time `t` (ms). */
  line(t = this.now()): string {
    const s = Math.max((t - this.started) / 1000, 0.001);
    const rate = this.done / s;
    let left = '';
    if (this.totalBytes && this.bytes > 0 && this.bytes < this.totalBytes) {
      left = `, about ${formatDuration(((this.totalBytes - this.bytes) / this.bytes) * s)} left`;
    }
    return `${this.label}: ${this.done} messages, ${rate >= 10 ? Math.round(rate) : rate.toFixed(1)}/s${left}`;
  }

  /** Clears the status line (the summary follows on a clean line). */
  finish(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
