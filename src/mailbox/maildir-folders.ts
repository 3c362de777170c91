// The folders of one user's Maildir++ tree and its Dovecot `subscriptions` file: list, create,
// delete, rename, subscribe. Names given here are already normalised (folder-names.ts).
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SEPARATOR, folderDir, nameOfDirEntry } from './folder-names.js';

export class FolderError extends Error {
  override readonly name = 'FolderError';
  constructor(readonly kind: 'NONEXISTENT' | 'ALREADYEXISTS' | 'CANNOT', message: string) {
    super(message);
  }
}

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Every mailbox of the tree, INBOX first, then the others sorted. */
export async function listFolders(root: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[] = [];
  try {
    entries = await fsp.readdir(root, { withFileTypes: true });
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
  const names = entries.filter((e) => e.isDirectory()).map((e) => nameOfDirEntry(e.name)).filter((n): n is string => n !== undefined);
  return ['INBOX', ...names.sort()];
}

export async function folderExists(root: string, name: string): Promise<boolean> {
  if (name === 'INBOX') return true;
  try {
    return (await fsp.stat(folderDir(root, name))).isDirectory();
  } catch {
    return false;
  }
}

/** Makes the Maildir structure of a folder (tmp/ new/ cur/, and Dovecot's maildirfolder mark). */
export async function ensureFolder(root: string, name: string): Promise<void> {
  const dir = folderDir(root, name);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sub of ['tmp', 'new', 'cur']) await fsp.mkdir(path.join(dir, sub), { recursive: true, mode: 0o700 });
  if (name !== 'INBOX') await fsp.appendFile(path.join(dir, 'maildirfolder'), '', { mode: 0o600 });
}

export async function createFolder(root: string, name: string): Promise<void> {
  if (await folderExists(root, name)) throw new FolderError('ALREADYEXISTS', 'Mailbox already exists');
  await ensureFolder(root, 'INBOX');
  const dir = folderDir(root, name);
  try {
    await fsp.mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if (errCode(err) === 'EEXIST') throw new FolderError('ALREADYEXISTS', 'Mailbox already exists');
    throw err;
  }
  await ensureFolder(root, name);
}

export async function deleteFolder(root: string, name: string): Promise<void> {
  if (name === 'INBOX') throw new FolderError('CANNOT', 'INBOX cannot be deleted');
  if (!(await folderExists(root, name))) throw new FolderError('NONEXISTENT', 'Mailbox does not exist');
  // Out of sight first (atomic), then removed: a session never sees half a folder. The
  // temporary name starts with ".." so it is never listed as a mailbox.
  const trash = path.join(root, `..portcullis-deleted-${crypto.randomBytes(6).toString('hex')}`);
  await fsp.rename(folderDir(root, name), trash);
  await fsp.rm(trash, { recursive: true, force: true });
  await setSubscribed(root, name, false);
}

/** RENAME: the folder and its children move; INBOX's messages move to a new folder instead. */
export async function renameFolder(root: string, from: string, to: string): Promise<void> {
  if (!(await folderExists(root, from))) throw new FolderError('NONEXISTENT', 'Mailbox does not exist');
  if (await folderExists(root, to)) throw new FolderError('ALREADYEXISTS', 'Mailbox already exists');
  if (to === from || to.startsWith(from + SEPARATOR)) throw new FolderError('CANNOT', 'Cannot rename a mailbox into itself');
  if (from === 'INBOX') {
    await createFolder(root, to);
    const dest = folderDir(root, to);
    for (const sub of ['new', 'cur']) {
      for (const f of await fsp.readdir(path.join(root, sub)).catch(() => [] as string[])) {
        await fsp.rename(path.join(root, sub, f), path.join(dest, sub, f)).catch(() => {});
      }
    }
    return;
  }
  const children = (await listFolders(root)).filter((n) => n.startsWith(from + SEPARATOR));
  await fsp.rename(folderDir(root, from), folderDir(root, to));
  for (const child of children) {
    const target = to + child.slice(from.length);
    await fsp.rename(folderDir(root, child), folderDir(root, target));
  }
  for (const n of [from, ...children]) {
    if ((await readSubscriptions(root)).includes(n)) {
      await setSubscribed(root, n, false);
      await setSubscribed(root, to + n.slice(from.length), true);
    }
  }
}

// --- subscriptions (Dovecot's file: a bare list, or "V\t2" + blank line + tab-separated levels)

export async function readSubscriptions(root: string): Promise<string[]> {
  let text = '';
  try {
    text = await fsp.readFile(path.join(root, 'subscriptions'), 'utf8');
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
  let lines = text.split(/\r?\n/);
  if (/^V\t\d/.test(lines[0] ?? '')) {
    const blank = lines.indexOf('', 1);
    lines = lines.slice(blank < 0 ? 1 : blank + 1).map((l) => l.replace(/\t/g, SEPARATOR));
  }
  return [...new Set(lines.filter((l) => l.length > 0))];
}

export async function setSubscribed(root: string, name: string, on: boolean): Promise<void> {
  const file = path.join(root, 'subscriptions');
  const current = await readSubscriptions(root);
  const has = current.includes(name);
  if (has === on) return;
  const next = on ? [...current, name] : current.filter((n) => n !== name);
  await fsp.mkdir(root, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  await fsp.writeFile(tmp, next.map((n) => `${n}\n`).join(''), { mode: 0o600 });
  await fsp.rename(tmp, file);
}
