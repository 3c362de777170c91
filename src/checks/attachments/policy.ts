// The attachment policy: for each part, from its names AND its content, pass, defang (".txt"
// appended, application/octet-stream), strip (replaced by a notice) or reject the message.
// Detection is apart from action: each finding is a named symbol, and the configuration maps
// each kind of finding to an action (docs/attachments.md).
//
// Names are looked at the way an attacker hopes a person or a client will read them: every
// name the headers give, the part before a NUL (C clients stop there), the base name after any
// path, trailing dots and spaces dropped (Windows does), bidirectional controls removed (what
// the program really is) and shown escaped (what the person saw).
import type { AttachmentsConfig, PartAction } from './config.js';
import { categoryOfMediaType, type FileType } from '../../mime/filetype.js';
import type { PartInfo } from '../../mime/inspector.js';
import { codePointName, showName } from '../../mime/filenames.js';

export type { PartAction } from './config.js';

const RANK: Record<PartAction, number> = { pass: 0, defang: 1, strip: 2, reject: 3 };

/** The stronger of two actions (reject > strip > defang > pass). */
export function strongerAction(a: PartAction, b: PartAction): PartAction {
  return RANK[a] >= RANK[b] ? a : b;
}

export interface PolicyFinding {
  readonly symbol: string;
  readonly reason: string;
}

export interface PartDecision {
  readonly action: PartAction;
  /** Why the action was taken (the reason of the finding that set it); '' for pass. */
  readonly reason: string;
  /** Every finding, whatever action it led to. */
  readonly findings: readonly PolicyFinding[];
  /** The part's name for reports, with invisible and bidi characters shown as <U+202E>. */
  readonly displayName: string;
  /** The harmless name a defanged part gets. */
  readonly defangedName: string;
}

export interface CompiledPolicy {
  readonly config: AttachmentsConfig;
  /** The action the lists and overrides give an extension (lower case, no dot). */
  actionFor(ext: string): PartAction;
}

export function compilePolicy(config: AttachmentsConfig): CompiledPolicy {
  const table = new Map<string, PartAction>();
  for (const e of config.defang_extensions) table.set(e, 'defang');
  for (const e of config.strip_extensions) table.set(e, 'strip');
  for (const [e, a] of Object.entries(config.extension_actions)) table.set(e, a);
  return { config, actionFor: (ext) => table.get(ext) ?? 'pass' };
}

/** What people mean by these extensions, for notices, headers and logs. */
const DESCRIPTIONS: Record<string, string> = {
  pif: 'program information file, runs a program', scr: 'Windows screen saver, a program', com: 'MS-DOS program',
  cpl: 'Control Panel applet, a program', scf: 'Windows Explorer command file', lnk: 'Windows shortcut, can run any command',
  hta: 'HTML application, runs with full user rights', vbe: 'encoded VBScript', jse: 'encoded JScript', wsf: 'Windows Script File',
  wsh: 'Windows Script Host file', wsc: 'Windows Script Component', sct: 'Windows scriptlet', shs: 'shell scrap object',
  shb: 'shell shortcut object', msc: 'Management Console snap-in', gadget: 'Windows gadget',
  exe: 'Windows program', dll: 'Windows library', ocx: 'ActiveX control', sys: 'Windows driver', drv: 'Windows driver',
  msi: 'Windows Installer package', msp: 'Windows Installer patch', mst: 'Windows Installer transform', appx: 'Windows app package',
  appxbundle: 'Windows app bundle', msix: 'Windows app package', msixbundle: 'Windows app bundle', application: 'ClickOnce application',
  'appref-ms': 'ClickOnce shortcut', jar: 'Java program', jnlp: 'Java Web Start launcher', xll: 'Excel add-in, a program',
  diagcab: 'Windows diagnostic package', bat: 'batch script', cmd: 'batch script', js: 'JScript script', vbs: 'VBScript script',
  vb: 'VBScript script', ps1: 'PowerShell script', ps1xml: 'PowerShell file', ps2: 'PowerShell script', ps2xml: 'PowerShell file',
  psc1: 'PowerShell console file', psc2: 'PowerShell console file', psd1: 'PowerShell data file', psm1: 'PowerShell module',
  reg: 'registry file', inf: 'setup information file', sh: 'shell script', command: 'macOS shell script', chm: 'compiled HTML help',
  hlp: 'Windows help file', url: 'Internet shortcut', website: 'pinned site shortcut', 'settingcontent-ms': 'Windows settings shortcut',
  'library-ms': 'Windows library file', 'searchconnector-ms': 'Windows search connector', iso: 'disk image', img: 'disk image',
  vhd: 'virtual disk', vhdx: 'virtual disk', dmg: 'macOS disk image', pkg: 'macOS installer package',
};

export function describeExtension(ext: string): string {
  return `${DESCRIPTIONS[ext] ?? `.${ext} file`} (.${ext})`;
}

/** Extensions people trust: a dangerous extension behind one of these is a disguise. */
const DECOYS = new Set([
  'pdf', 'doc', 'docx', 'docm', 'xls', 'xlsx', 'xlsm', 'ppt', 'pptx', 'rtf', 'txt', 'csv', 'odt', 'ods', 'odp',
  'jpg', 'jpeg', 'png', 'gif', 'bmp', 'tif', 'tiff', 'webp', 'heic', 'svg', 'mp3', 'mp4', 'wav', 'avi', 'mov', 'mkv',
  'zip', 'rar', '7z', 'htm', 'html', 'xml', 'json', 'eml', 'msg', 'ics', 'vcf',
]);
/** A "#!" script under one of these is what it says. */
const SCRIPT_OR_TEXT = new Set(['sh', 'bash', 'zsh', 'ksh', 'csh', 'py', 'pl', 'rb', 'php', 'tcl', 'lua', 'awk', 'txt', 'text', 'log', 'md', 'conf', 'cfg', 'diff', 'patch']);
/** Extensions that say "program" even when an operator lets them pass. */
const EXECUTABLE_EXTS = new Set(['exe', 'dll', 'scr', 'com', 'pif', 'cpl', 'ocx', 'sys', 'drv', 'msi', 'efi', 'elf', 'so', 'dylib', 'app', 'lnk', 'jar', 'class']);

const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const INVISIBLE = /[\u00ad\u180e\u200b-\u200d\u2060\ufeff]/g;
const CONTROL = /[\x00-\x1f\x7f]/;
const SEPARATOR = /[/\\]/;

interface NameFacts {
  readonly raw: string;
  /** Logical base name: what the file system gets (path dropped, bidi and invisible removed, Windows trimming). */
  readonly base: string;
  /** Extensions of the base name, last last ("invoice.pdf.exe" → ["pdf", "exe"]). */
  readonly exts: readonly string[];
  readonly ext: string;
  readonly bidi: readonly string[];
  readonly problems: readonly string[];
}

function nameFacts(raw: string): NameFacts {
  const problems: string[] = [];
  if (raw.includes('\0')) problems.push('a NUL character');
  else if (CONTROL.test(raw)) problems.push('control characters');
  if (SEPARATOR.test(raw)) problems.push('a path');
  if (/^\.+$/.test(raw.trim()) || raw.split(SEPARATOR).includes('..')) problems.push('a parent-directory reference');
  const bidi = [...new Set(raw.match(BIDI) ?? [])].map(codePointName);
  const logical = raw.replace(BIDI, '').replace(INVISIBLE, '');
  let base = logical.split(SEPARATOR).pop()!.replace(/[\x00-\x1f\x7f]/g, '');
  base = base.replace(/[. ]+$/, '');
  const segments = base.split('.');
  const exts = segments.slice(1).map((e) => e.trim().toLowerCase()).filter((e) => e.length > 0 && e.length <= 32);
  return { raw, base, exts, ext: segments.length > 1 ? exts[exts.length - 1] ?? '' : '', bidi, problems };
}

/** The names to judge: each given name, and its part before a NUL (where C code stops reading). */
function candidates(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    out.push(n);
    const nul = n.indexOf('\0');
    if (nul > 0) out.push(n.slice(0, nul));
  }
  return out;
}

/** A harmless file name for a defanged part: the logical base name, cleaned, with ".txt". */
export function defangName(name: string | undefined): string {
  const base = name ? nameFacts(name).base.replace(/["\\]/g, '_') : '';
  const clean = base.length > 180 ? base.slice(0, 180) : base;
  return `${clean || 'attachment.bin'}.txt`;
}

/** Judges one part from its descriptor and its sniffed content type. */
export function decidePart(part: PartInfo, fileType: FileType, policy: CompiledPolicy): PartDecision {
  const c = policy.config;
  const findings: PolicyFinding[] = [];
  let action: PartAction = 'pass';
  let reason = '';
  const raise = (a: PartAction, why: string) => {
    if (RANK[a] > RANK[action]) {
      action = a;
      reason = why;
    }
  };
  const find = (symbol: string, why: string) => {
    if (!findings.some((f) => f.symbol === symbol && f.reason === why)) findings.push({ symbol, reason: why });
  };

  const facts = candidates(part.filenames).map(nameFacts);
  let nameSaysProgram = false;
  let nameIsDecoy = false;
  let nameIsScriptOrText = false;
  for (const n of facts) {
    const shown = showName(n.raw);
    if (n.problems.length) {
      const why = `name "${shown}" contains ${n.problems.join(' and ')}`;
      find('ATTACH_BAD_NAME', why);
      raise(c.bad_names, why);
    }
    if (n.bidi.length) {
      const why = `name "${shown}" contains bidirectional text control ${n.bidi.join(' ')}, which reverses how it reads`;
      find('ATTACH_RTLO', why);
      raise(c.bidi_names, why);
    }
    const extAction = n.ext ? policy.actionFor(n.ext) : 'pass';
    if (EXECUTABLE_EXTS.has(n.ext) || extAction !== 'pass') nameSaysProgram = true;
    if (DECOYS.has(n.ext)) nameIsDecoy = true;
    if (SCRIPT_OR_TEXT.has(n.ext)) nameIsScriptOrText = true;
    if (extAction === 'pass') continue;
    raise(extAction, describeExtension(n.ext));
    // Disguises: a trusted extension in front, the real one pushed out of view, or reversed.
    const before = n.exts.length >= 2 ? n.exts[n.exts.length - 2]! : '';
    if (DECOYS.has(before)) {
      const why = `double extension: .${n.ext} hidden behind .${before} in "${shown}"`;
      find('ATTACH_DOUBLE_EXT', why);
      raise(c.disguised, why);
    } else if (/(\s{3,}|[_.\s]{6,})\.[^.]*$/.test(n.base)) {
      const why = `extension .${n.ext} pushed out of view by padding in "${shown}"`;
      find('ATTACH_DOUBLE_EXT', why);
      raise(c.disguised, why);
    }
    if (n.bidi.length) raise(c.disguised, `${describeExtension(n.ext)} disguised by reversed text in "${shown}"`);
  }

  // Names of the shape defanging produces ("setup.exe.txt", "attachment.bin.txt"): a click opens
  // a text viewer whatever the content, so content rules have nothing to add (and a message
  // defanged once passes the policy unchanged the next time).
  const defanged = facts.length > 0 && facts.every((n) => n.ext === 'txt' && n.exts.length >= 2);
  if (part.isAttachment && !defanged) {
    const declared = categoryOfMediaType(part.contentType);
    if (fileType.category === 'executable' && !nameSaysProgram) {
      const named = part.filename !== undefined ? `"${showName(part.filename)}"` : 'a part without a name';
      find('ATTACH_EXEC_MAGIC', `${fileType.description} in ${named}`);
      if (nameIsDecoy || declared === 'image' || declared === 'document' || declared === 'text') {
        const why = `${fileType.description} disguised as ${nameIsDecoy ? named : part.contentType}`;
        find('ATTACH_TYPE_MISMATCH', why);
        raise(c.disguised, why);
      } else {
        raise(c.executable_content, `${fileType.description} in ${named}`);
      }
    } else if (fileType.category === 'script' && !nameSaysProgram && !nameIsScriptOrText) {
      const named = part.filename !== undefined ? `"${showName(part.filename)}"` : 'a part without a name';
      const why = `${fileType.description} in ${named}`;
      find('ATTACH_SCRIPT_MAGIC', why);
      raise(c.script_content, why);
    } else if (fileType.category !== 'unknown' && fileType.category !== 'executable' && declared !== 'generic' && declared !== fileType.category) {
      // Claimed one thing, is another (image/jpeg that is a ZIP). ZIP-based documents may be
      // declared as ZIP and the other way round; a script is text.
      const benign = (declared === 'archive' && fileType.category === 'document' && /^(ooxml|odf)$/.test(fileType.kind)) ||
        (declared === 'document' && fileType.kind === 'zip') || (declared === 'text' && fileType.category === 'script');
      if (!benign) find('ATTACH_TYPE_MISMATCH', `declared ${part.contentType}, content is ${fileType.description}`);
    }
  }

  return {
    action, reason, findings,
    displayName: part.filename !== undefined ? showName(part.filename) : `(part ${part.path}, no name)`,
    defangedName: defangName(part.filename),
  };
}
