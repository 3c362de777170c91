// Reading stored messages for FETCH and SEARCH: the file (with CRLF line ends, as IMAP
// serves it), its size and its parsed MIME structure (cached across sessions).
import fsp from 'node:fs/promises';
import type { FolderIndex, MessageRecord } from '../maildir-index.js';
import { StructureCache, headerBytes, parseStructure, toCrlf, type MimePart } from '../message-structure.js';

export interface LoadedMessage {
  readonly rec: MessageRecord;
  readonly buf: Buffer;
  readonly root: MimePart;
}

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

export class MessageAccess {
  constructor(private readonly cache: StructureCache) {}

  /** The message bytes, or undefined when it no longer exists (expunged by someone else). */
  async read(index: FolderIndex, uid: number): Promise<{ rec: MessageRecord; buf: Buffer } | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const rec = index.get(uid);
      if (!rec) return undefined;
      try {
        const buf = toCrlf(await fsp.readFile(index.filePath(rec)));
        if (rec.size !== buf.length) index.rememberSize(rec, buf.length);
        return { rec, buf };
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw err;
        // Renamed by another process (a flag change) or removed: look again once.
        await index.sync();
      }
    }
    return undefined;
  }

  async load(index: FolderIndex, uid: number): Promise<LoadedMessage | undefined> {
    const got = await this.read(index, uid);
    if (!got) return undefined;
    const key = `${index.dir}\0${got.rec.base}\0${got.buf.length}`;
    let root = this.cache.get(key);
    if (!root) {
      root = parseStructure(got.buf);
      this.cache.set(key, root, headerBytes(root));
    }
    return { rec: got.rec, buf: got.buf, root };
  }

  /** The IMAP size of a message (reads it once if the index does not know it yet). */
  async size(index: FolderIndex, uid: number): Promise<number | undefined> {
    const rec = index.get(uid);
    if (rec?.size !== undefined) return rec.size;
    return (await this.read(index, uid))?.buf.length;
  }
}
