// Configuration of the attachment policy and the MIME walk (key `attachments` of the one
// schema). Every key has a default; docs/attachments.md explains each, and why the extension
// lists are what they are.
import { z } from 'zod';
import { duration, size } from '../../config/fields.js';

/** What happens to a part: left alone, renamed harmless, replaced by a notice, or the message refused. */
export const PART_ACTIONS = ['pass', 'defang', 'strip', 'reject'] as const;
export type PartAction = (typeof PART_ACTIONS)[number];
const action = z.enum(PART_ACTIONS);

/**
 * Stripped by default: Windows runs these directly on a double click, they are a classic malware
 * carrier, and mail never needs them (nobody mails a screen saver or a Control Panel applet).
 */
export const DEFAULT_STRIP_EXTENSIONS = [
  'pif', 'scr', 'com', 'cpl', 'scf', 'lnk', 'hta', 'vbe', 'jse', 'wsf', 'wsh', 'wsc', 'sct', 'shs', 'shb', 'msc', 'gadget',
] as const;

/**
 * Defanged by default (".txt" appended, made application/octet-stream): programs, installers,
 * scripts and disk images that people do sometimes exchange on purpose, so the file stays
 * available to someone who saves and renames it, but a click no longer runs it.
 */
export const DEFAULT_DEFANG_EXTENSIONS = [
  // Programs, libraries, installers, packages.
  'exe', 'dll', 'ocx', 'sys', 'drv', 'msi', 'msp', 'mst', 'appx', 'appxbundle', 'msix', 'msixbundle', 'application', 'appref-ms',
  'jar', 'jnlp', 'xll', 'diagcab',
  // Scripts and script hosts.
  'bat', 'cmd', 'js', 'vbs', 'vb', 'ps1', 'ps1xml', 'ps2', 'ps2xml', 'psc1', 'psc2', 'psd1', 'psm1', 'reg', 'inf', 'sh', 'command',
  // Help files and shortcuts that run code.
  'chm', 'hlp', 'url', 'website', 'settingcontent-ms', 'library-ms', 'searchconnector-ms',
  // Disk images (they mount, and their contents lose the "downloaded from the Internet" mark).
  'iso', 'img', 'vhd', 'vhdx', 'dmg', 'pkg',
] as const;

const extension = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/i, 'an extension such as "exe", without the dot').transform((e) => e.toLowerCase());

export const DEFAULT_NOTICE =
  'An attachment was removed from this message by the mail gateway.\n\n' +
  'File: {filename}\n' +
  'Reason: {reason}\n\n' +
  'Files of this kind can run programs on your computer and are a common way to spread malware.\n' +
  'If you expected this file, ask the sender to share it another way.\n';

export const attachmentsConfigSchema = z.strictObject({
  /** Off: no walk, no symbols, no rewriting (the AV and archive inspectors do not run either). */
  enabled: z.boolean().default(true),
  /** Extensions whose parts are replaced by a notice. */
  strip_extensions: z.array(extension).default([...DEFAULT_STRIP_EXTENSIONS]),
  /** Extensions whose parts get ".txt" appended and become application/octet-stream. */
  defang_extensions: z.array(extension).default([...DEFAULT_DEFANG_EXTENSIONS]),
  /** Per-extension overrides, e.g. { exe: strip, iso: pass }; they win over both lists. */
  extension_actions: z.record(extension, action).default({}),
  /**
   * A dangerous name or content dressed as a harmless one: "invoice.pdf.exe", a name with a
   * right-to-left override, an executable named photo.jpg or sent as image/jpeg.
   */
  disguised: action.default('strip'),
  /** A name with bidirectional-text controls (U+202E and kin), even when its real extension is harmless. */
  bidi_names: action.default('defang'),
  /**
   * A name with NUL, control characters or path separators, when its real extension is harmless
   * (the part before a NUL and the base name after a path are judged like any name anyway).
   */
  bad_names: action.default('pass'),
  /** Executable content (MZ/PE, ELF, Mach-O, .lnk) under a name that does not say so ("setup.ex_", none). */
  executable_content: action.default('defang'),
  /** A "#!" script under a name that is neither a script's nor plain text's. */
  script_content: action.default('defang'),
  max_depth: z.number().int().min(2).max(1000).default(100),
  max_parts: z.number().int().min(1).max(100_000).default(1000),
  /** Largest header section of one MIME part (the message's own included: the SMTP server allows 1 MiB). */
  max_header_size: size('1MiB'),
  /** Largest sum of all part headers in a message. */
  max_total_header_size: size('4MiB'),
  /** Longest line the walk accepts (RFC 5322 allows 998 characters). */
  max_line_size: size('1MiB'),
  /** Decoded bytes of each part handed to inspectors (archives, AV); longer parts are marked truncated. */
  max_part_scan_size: size('32MiB'),
  /** Time budget of the walk of one message. */
  scan_timeout: duration('30s'),
  /** Text of the part that replaces a stripped one; {filename} and {reason} are filled in. */
  notice: z.string().min(1).max(4000).default(DEFAULT_NOTICE),
});

export type AttachmentsConfig = z.output<typeof attachmentsConfigSchema>;

/** The defaults, as a parsed configuration (for tests, `scan` without a file, and docs). */
export function defaultAttachmentsConfig(): AttachmentsConfig {
  return attachmentsConfigSchema.parse({});
}
