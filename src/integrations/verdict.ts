// What the scan listeners tell other mail systems about a message, in their words: the X-Spam-*
// header fields the SMTP path writes (src/smtp/trace-headers.ts, same format), spamd's report
// and symbol list, the message with our verdict fields put in, and rspamd's action names.
import type { MessageScan } from '../pipeline/message-scanner.js';
import { asReceived, headerBlock } from '../pipeline/message-scanner.js';
import { parseHeaderBlock } from '../protocol/headers.js';
import { rewriteHeaders, spamFields, VERDICT_FIELD_NAMES } from '../smtp/trace-headers.js';

/** Verdict fields that a client adds above the message (the SMTP path's X-Spam-* lines). */
export function verdictFields(scan: MessageScan): [name: string, value: string][] {
  return spamFields(scan.spam, scan.score, scan.required, scan.symbols);
}

/** The verdict fields a client must take out of the message first: they would speak in our name. */
export { VERDICT_FIELD_NAMES };

/** Score and threshold as spamd writes them ("%2.1f"). */
export const spamdNumber = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : n > 0 ? '1000000.0' : '-1000000.0');

/** spamd's SYMBOLS answer: the names of the tests hit, comma-separated. */
export function symbolList(scan: MessageScan): string {
  return scan.symbols.map((s) => s.name).join(',');
}

/** spamd's REPORT answer, laid out as SpamAssassin's (spamc -R shows it as is). */
export function spamReport(scan: MessageScan, hostname: string): string {
  const lines = [
    `Spam detection software, running on the system "${hostname}",`,
    scan.spam ? 'has identified this incoming email as possible spam.' : 'has looked at this incoming email and found no spam.',
    '',
    `Content analysis details:   (${spamdNumber(scan.score)} points, ${spamdNumber(scan.required)} required)`,
    '',
    ' pts rule name              description',
    '---- ---------------------- --------------------------------------------------',
  ];
  for (const s of scan.symbols) {
    const pts = s.score.toFixed(1).padStart(4);
    lines.push(`${pts} ${s.name.padEnd(22)} ${s.reason.replace(/[\r\n\t]+/g, ' ').slice(0, 200)}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The message as spamd's PROCESS returns it: our verdict fields on top, the incoming ones that
 * claim to be ours removed, the Subject tagged when the site tags spam (policy.subject_tag), the
 * body untouched. Line ends follow the input's (a file with LF gets LF back).
 */
export function processedMessage(original: Buffer, scan: MessageScan, hostname: string, subjectTag: string): { headers: Buffer; body: Buffer } {
  const raw = asReceived(original);
  const block = headerBlock(raw);
  const fields = parseHeaderBlock(block);
  const kept = rewriteHeaders(fields, block, hostname, scan.spam && subjectTag ? subjectTag : '');
  const ours = Buffer.from(verdictFields(scan).map(([n, v]) => `${n}: ${v}\r\n`).join(''), 'utf8');
  let headers = Buffer.concat([ours, kept]);
  let body = raw.subarray(block.length);
  // The input's line ends, judged by its first line (asReceived() made them all CRLF).
  const firstLf = original.indexOf(0x0a);
  const lfOnly = firstLf >= 0 && (firstLf === 0 || original[firstLf - 1] !== 0x0d);
  if (lfOnly) {
    headers = Buffer.from(headers.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    body = original.subarray(afterLines(original, lines(block)));
  }
  return { headers, body };
}

/** Line feeds in a buffer. */
function lines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** Where the body starts in the original: asReceived() changes line ends only, never their number. */
function afterLines(b: Buffer, count: number): number {
  let pos = 0;
  for (let k = 0; k < count; k++) {
    const lf = b.indexOf(0x0a, pos);
    if (lf < 0) return b.length;
    pos = lf + 1;
  }
  return pos;
}

/** rspamd's action names (docs/integrations.md has the table). */
export type RspamdAction = 'no action' | 'add header' | 'rewrite subject' | 'reject' | 'soft reject' | 'greylist';

export function rspamdAction(scan: MessageScan, subjectTag: string): RspamdAction {
  if (scan.demand?.kind === 'tempfail') return 'soft reject';
  switch (scan.action) {
    case 'reject':
    case 'quarantine': // the MTA's copy cannot be held here: refused, as it would be over SMTP for everyone
      return 'reject';
    case 'junk':
    case 'tag':
      return subjectTag ? 'rewrite subject' : 'add header';
    default:
      return 'no action';
  }
}
