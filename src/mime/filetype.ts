// What a file really is, from its first bytes ("magic"), whatever its name or declared type
// says. Used by the attachment policy (a renamed executable is still an executable) and handed to
// inspectors (the archive and AV code pick their parts by it). Only the head of the decoded
// content is needed: SNIFF_BYTES is enough for every signature below.

/** Bytes of decoded content the walker keeps for sniffing. */
export const SNIFF_BYTES = 4096;

/** What a type means for the policy. */
export type FileCategory = 'executable' | 'script' | 'archive' | 'document' | 'image' | 'unknown';

export type FileKind =
  | 'pe' | 'dos-mz' | 'elf' | 'macho' | 'macho-fat' | 'java-class' | 'lnk'
  | 'shebang'
  | 'zip' | 'ooxml' | 'odf' | 'jar' | 'rar' | '7z' | 'gzip' | 'bzip2' | 'xz' | 'cab' | 'tar'
  | 'pdf' | 'ole' | 'rtf'
  | 'png' | 'jpeg' | 'gif' | 'webp' | 'bmp' | 'tiff'
  | 'unknown';

export interface FileType {
  readonly kind: FileKind;
  readonly category: FileCategory;
  /** For humans: "Windows PE executable", "shell script (#!/bin/sh)". */
  readonly description: string;
  /** The usual media type of this kind (application/octet-stream when unknown). */
  readonly mime: string;
}

export const UNKNOWN_TYPE: FileType = { kind: 'unknown', category: 'unknown', description: 'unrecognised content', mime: 'application/octet-stream' };

const t = (kind: FileKind, category: FileCategory, description: string, mime: string): FileType => ({ kind, category, description, mime });

const startsWith = (b: Buffer, sig: readonly number[], at = 0) => {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
};
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

const LNK_HEADER = [0x4c, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46];

/** Sniffs the type of content from its first bytes (SNIFF_BYTES is plenty; fewer work for most). */
export function sniff(head: Buffer): FileType {
  const b = head;
  if (b.length < 2) return UNKNOWN_TYPE;
  // Executables.
  if (b[0] === 0x4d && b[1] === 0x5a) {
    // MZ: DOS header; e_lfanew at 0x3c points at "PE\0\0" for Windows executables and DLLs.
    if (b.length >= 0x40) {
      const pe = b.readUInt32LE(0x3c);
      if (pe + 4 <= b.length && startsWith(b, [0x50, 0x45, 0x00, 0x00], pe)) return t('pe', 'executable', 'Windows PE executable', 'application/vnd.microsoft.portable-executable');
    }
    return t('dos-mz', 'executable', 'DOS/Windows executable (MZ)', 'application/x-msdownload');
  }
  if (startsWith(b, [0x7f, 0x45, 0x4c, 0x46])) return t('elf', 'executable', 'ELF executable', 'application/x-executable');
  if (b.length >= 4) {
    const be = b.readUInt32BE(0);
    if (be === 0xfeedface || be === 0xfeedfacf || be === 0xcefaedfe || be === 0xcffaedfe) {
      return t('macho', 'executable', 'Mach-O executable', 'application/x-mach-binary');
    }
    if (be === 0xcafebabe || be === 0xcafebabf) {
      // Fat Mach-O and Java class files share the magic: a fat header counts architectures (a
      // handful), a class file has its version there (45 and up).
      const second = b.length >= 8 ? b.readUInt32BE(4) : 0;
      if (be === 0xcafebabf || (second > 0 && second < 30)) return t('macho-fat', 'executable', 'Mach-O universal executable', 'application/x-mach-binary');
      return t('java-class', 'executable', 'Java class file', 'application/java-vm');
    }
  }
  if (startsWith(b, LNK_HEADER)) return t('lnk', 'executable', 'Windows shortcut (.lnk)', 'application/x-ms-shortcut');
  // Scripts: "#!" then an interpreter path (a UTF-8 BOM first does not stop the kernel... but be generous).
  const s = startsWith(b, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  if (b[s] === 0x23 && b[s + 1] === 0x21) {
    const line = b.subarray(s + 2, Math.min(b.length, s + 130)).toString('latin1').split(/[\r\n]/, 1)[0]!.trim();
    if (/^\/[^\s]*/.test(line)) return t('shebang', 'script', `script (#!${line.slice(0, 60)})`, 'text/x-script');
  }
  // Archives.
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04])) return zipFlavour(b);
  if (startsWith(b, [0x50, 0x4b, 0x05, 0x06]) || startsWith(b, [0x50, 0x4b, 0x07, 0x08])) return t('zip', 'archive', 'ZIP archive', 'application/zip');
  if (startsWith(b, ascii('Rar!\x1a\x07'))) return t('rar', 'archive', 'RAR archive', 'application/vnd.rar');
  if (startsWith(b, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return t('7z', 'archive', '7-Zip archive', 'application/x-7z-compressed');
  if (startsWith(b, [0x1f, 0x8b])) return t('gzip', 'archive', 'gzip data', 'application/gzip');
  if (startsWith(b, ascii('BZh')) && b.length > 3 && b[3]! >= 0x31 && b[3]! <= 0x39) return t('bzip2', 'archive', 'bzip2 data', 'application/x-bzip2');
  if (startsWith(b, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return t('xz', 'archive', 'xz data', 'application/x-xz');
  if (startsWith(b, ascii('MSCF\0\0\0\0'))) return t('cab', 'archive', 'Microsoft Cabinet archive', 'application/vnd.ms-cab-compressed');
  if (startsWith(b, ascii('ustar'), 257)) return t('tar', 'archive', 'tar archive', 'application/x-tar');
  // Documents.
  if (startsWith(b, ascii('%PDF-'))) return t('pdf', 'document', 'PDF document', 'application/pdf');
  if (startsWith(b, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) {
    return t('ole', 'document', 'OLE compound file (legacy Office document or MSI package)', 'application/x-ole-storage');
  }
  if (startsWith(b, ascii('{\\rtf'))) return t('rtf', 'document', 'RTF document', 'application/rtf');
  // Images.
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return t('png', 'image', 'PNG image', 'image/png');
  if (startsWith(b, [0xff, 0xd8, 0xff])) return t('jpeg', 'image', 'JPEG image', 'image/jpeg');
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return t('gif', 'image', 'GIF image', 'image/gif');
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return t('webp', 'image', 'WebP image', 'image/webp');
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return t('tiff', 'image', 'TIFF image', 'image/tiff');
  if (startsWith(b, ascii('BM')) && b.length >= 14 && b.readUInt32LE(6) === 0) return t('bmp', 'image', 'BMP image', 'image/bmp');
  return UNKNOWN_TYPE;
}

/** A ZIP's first entry tells OOXML (docx/xlsx/pptx), OpenDocument and Java archives apart. */
function zipFlavour(b: Buffer): FileType {
  if (b.length >= 30) {
    const nameLength = b.readUInt16LE(26);
    const extraLength = b.readUInt16LE(28);
    const name = b.subarray(30, Math.min(b.length, 30 + nameLength)).toString('latin1');
    if (name === 'mimetype') {
      const data = b.subarray(30 + nameLength + extraLength, 30 + nameLength + extraLength + 80).toString('latin1');
      if (data.startsWith('application/vnd.oasis.opendocument')) return t('odf', 'document', 'OpenDocument file', data.replace(/[^\x21-\x7e].*$/s, ''));
    }
    if (name === '[Content_Types].xml' || /^(word|xl|ppt)\//.test(name) || name === '_rels/.rels') {
      return t('ooxml', 'document', 'Office Open XML document (docx/xlsx/pptx)', 'application/vnd.openxmlformats-officedocument');
    }
    if (name.startsWith('META-INF/')) return t('jar', 'archive', 'Java archive (JAR)', 'application/java-archive');
  }
  return t('zip', 'archive', 'ZIP archive', 'application/zip');
}

/** The category a declared media type implies (what the sender claims the part is). */
export function categoryOfMediaType(mediaType: string): FileCategory | 'text' | 'generic' {
  const m = mediaType.toLowerCase();
  if (m === 'application/octet-stream' || m === '' || m === 'application/unknown' || m === 'application/binary') return 'generic';
  if (m.startsWith('image/')) return 'image';
  if (m.startsWith('text/')) return 'text';
  if (/^application\/(x-)?(msdownload|dosexec|msdos-program|executable|ms-installer|x-msi|mach-binary|elf|sharedlib|java-vm)$/.test(m) ||
    m === 'application/vnd.microsoft.portable-executable') return 'executable';
  if (/^application\/(x-)?(zip|zip-compressed|rar|rar-compressed|vnd\.rar|7z-compressed|gzip|gtar|tar|bzip2|xz|compressed|vnd\.ms-cab-compressed|java-archive)$/.test(m)) return 'archive';
  if (m === 'application/pdf' || m === 'application/x-pdf' || m === 'application/rtf' || m === 'application/msword' ||
    m.startsWith('application/vnd.ms-') || m.startsWith('application/vnd.openxmlformats') || m.startsWith('application/vnd.oasis.opendocument')) return 'document';
  return 'generic';
}
