// Runs `portcullis audit …` as a child process, and looks at an HTML report in headless Chromium.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { runCli } from '../helpers/gateway.js';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `portcullis audit ARGS` through the real command line (main.ts hands "audit" to auditCli). */
export function runAuditCli(args: readonly string[], { timeoutMs = 120_000, env }: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return runCli(['audit', ...args], { timeoutMs, env });
}

export function showRun(args: readonly string[], r: CliRun): string {
  return `portcullis audit ${args.join(' ')} → exit ${r.code}\n--- stdout\n${r.stdout.slice(0, 20000)}\n--- stderr\n${r.stderr.slice(-5000)}`;
}

const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--disable-dev-shm-usage', '--hide-scrollbars',
];

/** Screenshot (PNG) and DOM of a local HTML file as headless Chromium renders them. */
export function chromiumLook(htmlFile: string, outDir: string): { png: Buffer; dom: string } {
  const png = path.join(outDir, 'report.png');
  const url = pathToFileURL(htmlFile).href;
  const profile = (name: string) => `--user-data-dir=${path.join(outDir, `chromium-${name}`)}`;
  const shot = spawnSync('/usr/bin/chromium', [...CHROMIUM_FLAGS, profile('shot'), `--screenshot=${png}`, '--window-size=1200,2000', url], { encoding: 'utf8', timeout: 90_000 });
  if (!fs.existsSync(png)) throw new Error(`chromium made no screenshot (status ${shot.status}, signal ${shot.signal}):\n${shot.stderr?.slice(-3000)}`);
  const dom = spawnSync('/usr/bin/chromium', [...CHROMIUM_FLAGS, profile('dom'), '--dump-dom', url], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
  if (dom.status !== 0 || !dom.stdout) throw new Error(`chromium --dump-dom failed (status ${dom.status}, signal ${dom.signal}):\n${dom.stderr?.slice(-3000)}`);
  return { png: fs.readFileSync(png), dom: dom.stdout };
}

/** Width and height from a PNG's IHDR chunk; throws when the bytes are not a PNG. */
export function pngSize(png: Buffer): { width: number; height: number } {
  const magic = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (png.length < 24 || !png.subarray(0, 8).equals(magic) || png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('not a PNG file');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/**
 * How varied the image is: the number of distinct byte values in its inflated pixel data. A
 * blank page gives a handful (one background colour and the row filter bytes); a rendered
 * report with coloured badges and text gives well over a hundred.
 */
export function pngDistinctBytes(png: Buffer): number {
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= png.length;) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const pixels = zlib.inflateSync(Buffer.concat(idat));
  const seen = new Set<number>();
  for (const b of pixels) seen.add(b);
  return seen.size;
}
