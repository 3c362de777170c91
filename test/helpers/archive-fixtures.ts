// Archives built at test time: a hand-rolled zip writer (any name, lying sizes, overlapping
// entries, thousands of entries in milliseconds), encrypted zips through @zip.js/zip.js (AES and
// ZipCrypto), ustar, and 7z/tar.xz through bsdtar or 7z when they are installed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as zipjs from '@zip.js/zip.js';

zipjs.configure({ useWebWorkers: false });

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipFixtureEntry {
  readonly name: string;
  readonly data: Buffer;
  /** Default: deflate when it helps, else store. */
  readonly method?: 'store' | 'deflate';
  /** Write this uncompressed size in the headers instead of the real one (a lying header). */
  readonly declaredSize?: number;
}

/**
 * A plain zip. `overlap`: the central directory lists the first entry's data a second time
 * under another name (the "better zip bomb" trick).
 */
export function zipOf(entries: readonly ZipFixtureEntry[], opts: { overlap?: boolean } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  const records: { name: Buffer; crc: number; csize: number; usize: number; method: number; offset: number }[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const deflated = e.method === 'store' ? undefined : zlib.deflateRawSync(e.data);
    const useDeflate = e.method === 'deflate' || (deflated !== undefined && deflated.length < e.data.length);
    const body = useDeflate ? deflated ?? zlib.deflateRawSync(e.data) : e.data;
    const method = useDeflate ? 8 : 0;
    const crc = crc32(e.data);
    const usize = e.declaredSize ?? e.data.length;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0800, 6); // UTF-8 names
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(usize, 22);
    lh.writeUInt16LE(name.length, 26);
    records.push({ name, crc, csize: body.length, usize, method, offset });
    locals.push(lh, name, body);
    offset += lh.length + name.length + body.length;
  }
  if (opts.overlap && records.length) records.push({ ...records[0]!, name: Buffer.from(`again-${records[0]!.name.toString()}`) });
  for (const r of records) {
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0800, 8);
    ch.writeUInt16LE(r.method, 10);
    ch.writeUInt32LE(r.crc, 16);
    ch.writeUInt32LE(r.csize, 20);
    ch.writeUInt32LE(r.usize, 24);
    ch.writeUInt16LE(r.name.length, 28);
    ch.writeUInt32LE(r.offset, 42);
    centrals.push(ch, r.name);
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length & 0xffff, 8);
  end.writeUInt16LE(records.length & 0xffff, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** An encrypted zip (AES-256 by default, or ZipCrypto) written by @zip.js/zip.js. */
export async function encryptedZip(entries: readonly { name: string; data: Buffer }[], password: string, opts: { zipCrypto?: boolean } = {}): Promise<Buffer> {
  const w = new zipjs.ZipWriter(new zipjs.Uint8ArrayWriter());
  for (const e of entries) {
    await w.add(e.name, new zipjs.Uint8ArrayReader(e.data), { password, zipCrypto: opts.zipCrypto ?? false, encryptionStrength: 3 });
  }
  return Buffer.from(await w.close());
}

/** A ustar archive of regular files. */
export function tarOf(entries: readonly { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name.slice(0, 99), 0, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${e.data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Runs `fn(dir)` in a fresh folder holding `files`, returns the bytes of `dir/out`. */
export function withFiles(files: Record<string, Buffer>, fn: (dir: string, names: string[]) => void): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-fixture-'));
  try {
    for (const [name, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), data);
    }
    fn(dir, Object.keys(files));
    return fs.readFileSync(path.join(dir, 'out'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** An archive written by bsdtar: format "7zip", or "ustar" with a filter ("--xz", "--bzip2", "-z"). */
export function bsdtarArchive(files: Record<string, Buffer>, args: string[]): Buffer {
  return withFiles(files, (dir, names) => execFileSync('/usr/bin/bsdtar', ['-cf', 'out', ...args, ...names], { cwd: dir, stdio: 'pipe' }));
}

/** A 7z written by 7-Zip (/usr/bin/7z), optionally encrypted (and with encrypted names). */
export function sevenZip(files: Record<string, Buffer>, opts: { password?: string; encryptNames?: boolean } = {}): Buffer {
  const args = ['a', '-bso0', '-bsp0', '-t7z', 'out.7z', ...(opts.password ? [`-p${opts.password}`, `-mhe=${opts.encryptNames ? 'on' : 'off'}`] : [])];
  return withFiles(files, (dir, names) => {
    execFileSync('/usr/bin/7z', [...args, ...names], { cwd: dir, stdio: 'pipe' });
    fs.renameSync(path.join(dir, 'out.7z'), path.join(dir, 'out'));
  });
}

/** A ZipCrypto zip written by Info-ZIP (/usr/bin/zip -P). */
export function infoZip(files: Record<string, Buffer>, password?: string): Buffer {
  return withFiles(files, (dir, names) => {
    execFileSync('/usr/bin/zip', ['-q', ...(password ? ['-P', password] : []), 'out.zip', ...names], { cwd: dir, stdio: 'pipe' });
    fs.renameSync(path.join(dir, 'out.zip'), path.join(dir, 'out'));
  });
}

/** A PE-looking executable: "MZ" and some bytes. */
export const FAKE_EXE = Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00', 'latin1'), Buffer.alloc(120, 0x41)]);
export const FAKE_ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(56)]);
