// The symbols of the attachment walk (attachments.ts, src/mime/analyse.ts): attachment findings
// (group attachments) and MIME structure findings (group mime).
import { declare } from '../registry.js';

export const ATTACHMENT_SYMBOLS = declare('attachments', {
  ATTACH_EXE_STRIPPED: 'a part was replaced by a notice (.pif, .scr, .lnk…, or a disguised program)',
  ATTACH_EXE_DEFANGED: 'a program or script got ".txt" appended (people do mail installers and scripts)',
  ATTACH_DOUBLE_EXT: '"invoice.pdf.exe", or an extension pushed out of view by padding',
  ATTACH_RTLO: 'a file name with bidi controls (U+202E…): no honest use',
  ATTACH_TYPE_MISMATCH: 'declared or named one type, content is another (an executable sent as image/jpeg)',
  ATTACH_EXEC_MAGIC: 'executable content (MZ, ELF, Mach-O, .lnk) under a name that does not say so',
  ATTACH_SCRIPT_MAGIC: 'a "#!" script under a name that does not say so',
  ATTACH_BAD_NAME: 'a file name with NUL, control characters or a path',
  ATTACH_REJECTED: ['a part whose action is "reject" (an attachment type, an archive finding): refused 554 5.7.1', 'reject'],
  ATTACH_UNREMOVABLE: ['a part must be removed but cannot be located safely: refused 554 5.6.0, never delivered as is', 'reject', 'safety'],
  INSPECTOR_FAILED: 'an inspector (archive, AV) failed on a part; the reason says which',
});

export const MIME_SYMBOLS = declare('mime', {
  MIME_UNSCANNABLE: ['the walk could not see the message whole (the fatal MIME_* findings it names): refused 554 5.6.0', 'reject'],
  MIME_TOO_DEEP: 'nesting past attachments.max_depth (the walk stops: MIME_UNSCANNABLE)',
  MIME_TOO_MANY_PARTS: 'more than attachments.max_parts (the walk stops: MIME_UNSCANNABLE)',
  MIME_HEADER_TOO_BIG: 'a part header past max_header_size, or all of them past max_total_header_size',
  MIME_LONG_LINE: 'a line past max_line_size',
  MIME_BAD_BOUNDARY: 'a boundary clients and our parser would read differently',
  MIME_SCAN_TIMEOUT: ['the walk ran out of time: 451 4.6.0', 'tempfail'],
  MIME_MALFORMED: 'a part header cut short by a boundary, or other broken structure',
  MIME_BAD_BASE64: 'truncated base64, invalid characters, data after the padding',
  MIME_BAD_QP: 'broken quoted-printable escapes',
  MIME_UNCLOSED: 'a multipart without its closing boundary (often a cut-off message)',
  MIME_NO_BOUNDARY: 'a multipart without a boundary parameter, or whose boundary never appears',
  MIME_UNKNOWN_ENCODING: 'a Content-Transfer-Encoding other than 7bit, 8bit, binary, base64, quoted-printable',
});
