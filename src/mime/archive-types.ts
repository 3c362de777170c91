// What a blob of bytes is, as far as archive inspection cares: which archive format (by magic
// bytes, never by name alone), whether it is an executable (by name and by magic bytes), and
// whether an entry name tries to leave the extraction directory. Pure functions, no I/O.

/** Formats we open. zip, gzip and tar natively; the others through libarchive's bsdtar. */
export type ArchiveFormat = 'zip' | 'gzip' | 'tar' | '7z' | 'rar' | 'xz' | 'bzip2' | 'cab' | 'iso' | 'cpio';

/** Formats handed to bsdtar. Only ever chosen from magic bytes (see sniffArchive). */
export const BSDTAR_FORMATS: ReadonlySet<ArchiveFormat> = new Set(['7z', 'rar', 'xz', 'bzip2', 'cab', 'iso', 'cpio']);

const startsWith = (buf: Uint8Array, bytes: readonly number[], at = 0): boolean =>
  buf.length >= at + bytes.length && bytes.every((b, i) => buf[at + i] === b);

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/**
 * The archive format of `buf` from its magic bytes, or undefined. Text is never taken for an
 * archive: libarchive would read some text as an "mtree" listing that names local files, so
 * bsdtar only ever sees bytes that carry a binary archive signature.
 */
export function sniffArchive(buf: Uint8Array): ArchiveFormat | undefined {
  if (startsWith(buf, [0x50, 0x4b, 0x03, 0x04]) || startsWith(buf, [0x50, 0x4b, 0x05, 0x06]) || startsWith(buf, [0x50, 0x4b, 0x07, 0x08])) return 'zip';
  if (startsWith(buf, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(buf, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return '7z';
  if (startsWith(buf, ascii('Rar!\x1a\x07'))) return 'rar';
  if (startsWith(buf, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (startsWith(buf, ascii('BZh')) && buf.length > 3 && buf[3]! >= 0x31 && buf[3]! <= 0x39) return 'bzip2';
  if (startsWith(buf, ascii('MSCF\0\0\0\0'))) return 'cab';
  if (startsWith(buf, ascii('070701')) || startsWith(buf, ascii('070702')) || startsWith(buf, ascii('070707')) || startsWith(buf, [0xc7, 0x71])) return 'cpio';
  if (startsWith(buf, ascii('ustar'), 257)) return 'tar';
  if (startsWith(buf, ascii('CD001'), 0x8001)) return 'iso';
  return undefined;
}

const ARCHIVE_EXTENSIONS: Record<string, ArchiveFormat> = {
  zip: 'zip',
  gz: 'gzip', tgz: 'gzip', tar: 'tar', '7z': '7z', rar: 'rar', xz: 'xz', txz: 'xz',
  bz2: 'bzip2', tbz: 'bzip2', tbz2: 'bzip2', cab: 'cab', iso: 'iso', img: 'iso', cpio: 'cpio',
};

/** The format a file name claims (".zip" → zip), used only to call a broken file corrupt. */
export function archiveFormatFromName(name: string): ArchiveFormat | undefined {
  const ext = extension(name);
  return ext ? ARCHIVE_EXTENSIONS[ext] : undefined;
}

/** Lower-case extension without the dot ("a.tar.gz" → "gz"), or "". */
export function extension(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 || (dot === 0 && base.length > 1) ? base.slice(dot + 1).toLowerCase().trim() : '';
}

/**
 * Extensions that Windows (or a desktop) runs on a double click, plus scripts and installers.
 * Deliberately short and unambiguous; the attachment policy has its own, longer list.
 */
export const EXECUTABLE_EXTENSIONS: ReadonlySet<string> = new Set([
  'exe', 'com', 'scr', 'pif', 'bat', 'cmd', 'cpl', 'dll', 'msi', 'msp', 'mst', 'hta', 'jar',
  'js', 'jse', 'vbs', 'vbe', 'wsf', 'wsh', 'wsc', 'ps1', 'psm1', 'lnk', 'reg', 'scf', 'inf',
  'application', 'gadget', 'msc', 'sct', 'chm', 'appx', 'appxbundle', 'msix', 'elf', 'sh', 'app', 'command',
]);

/**
 * Why `name`/`head` is an executable, or undefined. `head` is the first bytes of the content when
 * they were read (MZ: DOS/Windows PE, ELF, Mach-O and fat Mach-O, "#!" scripts).
 */
export function executableKind(name: string, head?: Uint8Array): string | undefined {
  if (head && head.length >= 2) {
    if (head[0] === 0x4d && head[1] === 0x5a) return 'Windows executable (MZ)';
    if (startsWith(head, [0x7f, 0x45, 0x4c, 0x46])) return 'ELF executable';
    if (startsWith(head, [0xfe, 0xed, 0xfa, 0xce]) || startsWith(head, [0xfe, 0xed, 0xfa, 0xcf]) ||
        startsWith(head, [0xce, 0xfa, 0xed, 0xfe]) || startsWith(head, [0xcf, 0xfa, 0xed, 0xfe])) return 'Mach-O executable';
    // 0xCAFEBABE is both a fat Mach-O and a Java class: an executable either way.
    if (startsWith(head, [0xca, 0xfe, 0xba, 0xbe])) return 'Mach-O universal binary or Java class';
    if (head[0] === 0x23 && head[1] === 0x21) return 'script with #! interpreter line';
  }
  const ext = extension(name);
  if (ext && EXECUTABLE_EXTENSIONS.has(ext)) return `.${ext} file`;
  return undefined;
}

/**
 * Whether an entry name would leave the extraction directory: a ".." segment, an absolute path
 * ("/x", "\\x"), a drive letter ("C:") or a UNC path. Both separators count (zip tools on
 * Windows honour "\\").
 */
export function isTraversalName(name: string): boolean {
  if (/^[\\/]/.test(name) || /^[a-z]:/i.test(name)) return true;
  return name.split(/[\\/]+/).some((seg) => seg === '..');
}

/** Printable form of an entry name for reasons and logs: control characters escaped, bounded. */
export function displayName(name: string, max = 120): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}
