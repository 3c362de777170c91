// The quarantine folder: a copy of each infected message that was refused, for the operator to
// look at (it was never accepted, so nobody else has it). One .eml file with the message as
// received and one .json sidecar with the verdict and the envelope, both mode 0600 in a 0700
// folder. Written before the reject reply; a failure to write is logged, never a reason to
// accept the message.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';

export interface QuarantineRecord {
  readonly signature: string;
  /** Where the virus was found: "message", or the archive path of a decrypted entry. */
  readonly where: string;
  readonly sessionId: string;
  readonly client: string;
  readonly helo?: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly size: number;
}

/** Writes `<dir>/<time>-<id>.eml` and `.json`; returns the .eml path. */
export async function quarantineMessage(dir: string, message: NodeJS.ReadableStream, record: QuarantineRecord, now = new Date()): Promise<string> {
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const base = path.join(dir, `${stamp}-${crypto.randomBytes(6).toString('hex')}`);
  const eml = `${base}.eml`;
  // 'wx': never overwrite; 0600: the message may carry personal data besides the virus.
  await pipeline(message as Readable, fs.createWriteStream(eml, { flags: 'wx', mode: 0o600 }));
  const sidecar = { ...record, time: now.toISOString(), file: path.basename(eml) };
  await fs.promises.writeFile(`${base}.json`, `${JSON.stringify(sidecar, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
  return eml;
}
