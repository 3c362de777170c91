// A small push parser for tar streams (POSIX ustar, pax extended headers, GNU long names): used
// for .tar and .tar.gz attachments, and for what bsdtar writes when it converts 7z/rar/cab/iso to
// a pax stream. Bounded: each entry's content is kept up to `keepBytes`, the rest is counted and
// dropped; extended headers are capped. Never throws on hostile input except TarError.

export class TarError extends Error {
  override readonly name = 'TarError';
}

export interface TarEntry {
  readonly name: string;
  readonly type: 'file' | 'directory' | 'link' | 'other';
  /** Size the header declares (what the content really is). */
  readonly size: number;
  /** The content, up to the parser's keepBytes. */
  readonly data: Buffer;
  readonly truncated: boolean;
}

const BLOCK = 512;
const MAX_META = 1 << 20; // pax header or GNU long name

export class TarParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: 'header' | 'data' | 'pad' | 'end' = 'header';
  private current?: { name: string; type: TarEntry['type'] | 'pax' | 'paxGlobal' | 'longName' | 'longLink'; size: number; remaining: number; chunks: Buffer[]; kept: number };
  private padRemaining = 0;
  private pending: { path?: string; size?: number } = {};
  private zeroBlocks = 0;
  /** Header blocks seen (entries, pax and long-name headers included). */
  headers = 0;

  constructor(private readonly keepBytes: number) {}

  /** True once the end-of-archive marker (zero blocks) was seen. */
  get ended(): boolean {
    return this.state === 'end';
  }

  /** Feeds bytes; returns the entries completed by them. Throws TarError on a broken header. */
  push(chunk: Buffer): TarEntry[] {
    const out: TarEntry[] = [];
    if (this.state === 'end') return out;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.state === 'header') {
        if (this.buf.length - pos < BLOCK) break;
        const block = this.buf.subarray(pos, pos + BLOCK);
        pos += BLOCK;
        if (block.every((b) => b === 0)) {
          if (++this.zeroBlocks >= 2) {
            this.state = 'end';
            break;
          }
          continue;
        }
        this.zeroBlocks = 0; // one stray zero block: GNU tar reads on too
        this.startEntry(block);
        if (this.current!.remaining === 0) this.finishEntry(out);
        else this.state = 'data';
      } else if (this.state === 'data') {
        const cur = this.current!;
        const n = Math.min(cur.remaining, this.buf.length - pos);
        if (n === 0) break;
        const piece = this.buf.subarray(pos, pos + n);
        pos += n;
        cur.remaining -= n;
        const limit = cur.type === 'file' ? this.keepBytes : cur.type === 'pax' || cur.type === 'paxGlobal' || cur.type === 'longName' || cur.type === 'longLink' ? MAX_META : 0;
        if (cur.kept < limit) {
          const take = piece.subarray(0, Math.min(piece.length, limit - cur.kept));
          cur.chunks.push(Buffer.from(take)); // copy: the input buffer is released
          cur.kept += take.length;
        }
        if (cur.remaining === 0) this.finishEntry(out);
      } else if (this.state === 'pad') {
        const n = Math.min(this.padRemaining, this.buf.length - pos);
        if (n === 0 && this.padRemaining) break;
        pos += n;
        this.padRemaining -= n;
        if (this.padRemaining === 0) this.state = 'header';
      } else {
        break;
      }
    }
    // After the end marker only record padding follows: drop it.
    this.buf = pos >= this.buf.length || this.state === 'end' ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
    return out;
  }

  /** Call at the end of input: throws TarError when the stream stopped inside an entry. */
  finish(): void {
    if (this.state === 'end') return;
    if (this.state === 'data' || this.state === 'pad') throw new TarError('tar stream truncated inside an entry');
    if (this.buf.length) throw new TarError('tar stream truncated inside a header');
  }

  private startEntry(block: Buffer): void {
    this.headers++;
    const sum = octal(block.subarray(148, 156));
    let check = 0;
    for (let i = 0; i < BLOCK; i++) check += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum === undefined || sum !== check) throw new TarError('tar header checksum mismatch');
    const flag = String.fromCharCode(block[156]!);
    const ustar = block.subarray(257, 262).toString('latin1') === 'ustar';
    let name = cstring(block.subarray(0, 100));
    if (ustar) {
      const prefix = cstring(block.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    const size = tarSize(block.subarray(124, 136));
    if (size === undefined) throw new TarError('tar header has an invalid size');
    const type: NonNullable<TarParser['current']>['type'] =
      flag === '0' || flag === '\0' || flag === '7' ? 'file'
      : flag === '5' ? 'directory'
      : flag === '1' || flag === '2' ? 'link'
      : flag === 'x' ? 'pax'
      : flag === 'g' ? 'paxGlobal'
      : flag === 'L' ? 'longName'
      : flag === 'K' ? 'longLink'
      : 'other';
    const isMeta = type === 'pax' || type === 'paxGlobal' || type === 'longName' || type === 'longLink';
    if (isMeta && size > MAX_META) throw new TarError('tar extended header too large');
    let realSize = size;
    if (!isMeta) {
      if (this.pending.path !== undefined) name = this.pending.path;
      if (this.pending.size !== undefined) realSize = this.pending.size;
      this.pending = {};
    }
    // Links and directories carry no data even when a size is written.
    const dataSize = type === 'link' || type === 'directory' ? 0 : realSize;
    this.current = { name, type, size: realSize, remaining: dataSize, chunks: [], kept: 0 };
    this.padRemaining = (BLOCK - (dataSize % BLOCK)) % BLOCK;
  }

  private finishEntry(out: TarEntry[]): void {
    const cur = this.current!;
    this.current = undefined;
    this.state = this.padRemaining ? 'pad' : 'header';
    const data = cur.chunks.length === 1 ? cur.chunks[0]! : Buffer.concat(cur.chunks);
    switch (cur.type) {
      case 'pax': {
        const rec = parsePax(data);
        if (rec.path !== undefined) this.pending.path = rec.path;
        if (rec.size !== undefined) this.pending.size = rec.size;
        return;
      }
      case 'longName':
        this.pending.path = cstring(data);
        return;
      case 'paxGlobal':
      case 'longLink':
        return;
      default:
        out.push({ name: cur.name, type: cur.type, size: cur.size, data, truncated: cur.kept < cur.size && cur.type === 'file' });
    }
  }
}

function cstring(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

function octal(b: Buffer): number | undefined {
  const s = b.toString('latin1').replace(/[\0 ]+$/g, '').replace(/^[ \0]+/, '');
  if (!s) return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

/** ustar octal size, or GNU base-256 (high bit set) for sizes past 8 GiB. */
function tarSize(b: Buffer): number | undefined {
  if (b[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return Number.isSafeInteger(v) ? v : undefined;
  }
  return octal(b);
}

/** Pax records "<len> key=value\n"; only path and size matter here. */
function parsePax(data: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(data.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) break;
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) {
      const key = rec.slice(0, eq);
      const value = rec.slice(eq + 1);
      if (key === 'path') out.path = value;
      else if (key === 'size' && /^\d+$/.test(value) && Number.isSafeInteger(Number(value))) out.size = Number(value);
    }
    pos += len;
  }
  return out;
}
