// Mailbox names and where they live in a Maildir++ tree (the layout Dovecot reads with its
// default `maildir` driver): INBOX is the Maildir itself, every other folder a directory
// "." + name beside INBOX's tmp/ new/ cur/, with "." as the hierarchy separator
// ("Archive.2024" → ".Archive.2024") and the name kept in modified UTF-7 on disk as Dovecot does.
//
// Safety: a name is checked here once, before any path is built from it. "/" and NUL never
// pass, no component may be empty (so "..", a leading or trailing "." and "a..b" all fail), and
// the resulting directory is checked to be a direct child of the user's Maildir all the same.
import path from 'node:path';

/** The hierarchy separator, as Dovecot's Maildir++ layout uses it. */
export const SEPARATOR = '.';
/** Longest mailbox name on the wire (modified UTF-7), bytes: "." + name must fit a file name. */
export const MAX_NAME_LENGTH = 200;
/** Deepest hierarchy accepted. */
export const MAX_DEPTH = 16;

/** The folders given a RFC 6154 special-use attribute, by their standard top-level names. */
export const SPECIAL_USE: Readonly<Record<string, string>> = {
  Junk: '\\Junk',
  Sent: '\\Sent',
  Trash: '\\Trash',
  Drafts: '\\Drafts',
  Archive: '\\Archive',
};

/** Folders made at first login (beside INBOX), so clients find their special-use folders. */
export const DEFAULT_FOLDERS = ['Drafts', 'Sent', 'Trash', 'Junk'] as const;

export class MailboxNameError extends Error {
  override readonly name = 'MailboxNameError';
}

// ---------------------------------------------------------------------------------------------
// Modified UTF-7 (RFC 3501 5.1.3)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

/** Unicode → modified UTF-7. */
export function encodeMailboxName(name: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = () => {
    if (!pending.length) return;
    const bytes: number[] = [];
    for (const u of pending) bytes.push(u >> 8, u & 0xff);
    let bits = 0;
    let acc = 0;
    out += '&';
    for (const b of bytes) {
      acc = (acc << 8) | b;
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        out += B64[(acc >> bits) & 0x3f];
      }
    }
    if (bits > 0) out += B64[(acc << (6 - bits)) & 0x3f];
    out += '-';
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : name[i];
    } else {
      pending.push(c);
    }
  }
  flush();
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Modified UTF-7 → Unicode; undefined when the text is not valid modified UTF-7. */
export function decodeMailboxName(wire: string): string | undefined {
  let out = '';
  for (let i = 0; i < wire.length; i++) {
    const c = wire.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return undefined;
    if (wire[i] !== '&') {
      out += wire[i];
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) return undefined;
    const chunk = wire.slice(i + 1, end);
    i = end;
    if (chunk === '') {
      out += '&';
      continue;
    }
    let bits = 0;
    let acc = 0;
    const units: number[] = [];
    let byteHi = -1;
    for (const ch of chunk) {
      const v = B64.indexOf(ch);
      if (v < 0) return undefined;
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        const b = (acc >> bits) & 0xff;
        if (byteHi < 0) byteHi = b;
        else {
          units.push((byteHi << 8) | b);
          byteHi = -1;
        }
      }
    }
    // Leftover bits must be zero padding, shorter than one base64 digit.
    if (byteHi >= 0 || units.length === 0 || bits >= 6 || (acc & ((1 << bits) - 1)) !== 0) return undefined;
    const decoded = String.fromCharCode(...units);
    // Printable ASCII must not be encoded (the encoding is canonical), and the result must be
    // well-formed UTF-16.
    if (/[\x20-\x7e]/.test(decoded) || LONE_SURROGATE.test(decoded)) return undefined;
    out += decoded;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation and mapping

/**
 * The canonical form of a mailbox name received from a client (modified UTF-7): "INBOX" in any
 * case becomes "INBOX" (also as the first component of a child). Throws MailboxNameError with
 * the reason when the name is not acceptable.
 */
export function normalizeMailboxName(wire: string): string {
  if (wire.length === 0) throw new MailboxNameError('empty mailbox name');
  if (Buffer.byteLength(wire) > MAX_NAME_LENGTH) throw new MailboxNameError(`mailbox name longer than ${MAX_NAME_LENGTH} bytes`);
  if (/[\x00-\x1f\x7f/\\]/.test(wire)) throw new MailboxNameError('mailbox name contains "/", "\\" or a control character');
  const unicode = decodeMailboxName(wire);
  if (unicode === undefined || encodeMailboxName(unicode) !== wire) throw new MailboxNameError('mailbox name is not valid modified UTF-7');
  const parts = wire.split(SEPARATOR);
  if (parts.length > MAX_DEPTH) throw new MailboxNameError(`mailbox hierarchy deeper than ${MAX_DEPTH}`);
  if (parts.some((p) => p === '')) throw new MailboxNameError('mailbox name has an empty level (leading, trailing or double ".")');
  if (parts.some((p) => p.startsWith('~'))) throw new MailboxNameError('a mailbox level may not start with "~"');
  if (parts[0]!.toUpperCase() === 'INBOX') parts[0] = 'INBOX';
  return parts.join(SEPARATOR);
}

/** Like normalizeMailboxName() but also refusing the LIST wildcards (for CREATE and RENAME). */
export function newMailboxName(wire: string): string {
  const n = normalizeMailboxName(wire);
  if (/[*%]/.test(n)) throw new MailboxNameError('mailbox name contains a wildcard ("*" or "%")');
  return n;
}

/** The directory holding a (normalised) mailbox inside the Maildir `root`. */
export function folderDir(root: string, name: string): string {
  if (name === 'INBOX') return root;
  const dir = path.join(root, `.${name}`);
  // Belt and braces: the name rules already make this impossible.
  if (path.dirname(dir) !== root || path.basename(dir) !== `.${name}`) {
    throw new MailboxNameError('mailbox name does not map to a folder of this mailbox');
  }
  return dir;
}

/** The mailbox name of a Maildir++ folder directory entry (".Sent" → "Sent"), or undefined. */
export function nameOfDirEntry(entry: string): string | undefined {
  if (!entry.startsWith('.') || entry === '.' || entry === '..') return undefined;
  try {
    const n = normalizeMailboxName(entry.slice(1));
    return n === 'INBOX' ? undefined : n;
  } catch {
    return undefined;
  }
}

/** The special-use attribute of a mailbox, if it has one. */
export function specialUseOf(name: string): string | undefined {
  return Object.hasOwn(SPECIAL_USE, name) ? SPECIAL_USE[name] : undefined;
}
