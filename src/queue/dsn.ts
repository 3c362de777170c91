// Delivery status notifications (RFC 3464) — only ever for senders who logged in. An
// unauthenticated sender address may be forged, so mail from the MX is never bounced
// (no backscatter); a logged-in user, whose address we verified, deserves to learn that a
// message failed, and gets the report straight into its own mailbox, not over SMTP.
import crypto from 'node:crypto';
import { rfc5322Date } from '../protocol/date.js';

export interface FailedRecipient {
  readonly address: string;
  readonly reply: string;
}

/** Builds a multipart/report message with the original headers attached. */
export function buildDsn(opts: { hostname: string; id: string; sender: string; arrived: Date; failed: FailedRecipient[]; originalHeaders: Buffer; now?: Date }): Buffer {
  const boundary = `=_portcullis_${crypto.randomBytes(8).toString('hex')}`;
  const now = opts.now ?? new Date();
  const list = opts.failed.map((f) => `  <${f.address}>: ${f.reply}`).join('\r\n');
  const perRecipient = opts.failed.map((f) => {
    const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(f.reply);
    // A remote server's answer, as MX delivery words it: "host NAME[ADDRESS] said: 550 ... (in reply to RCPT TO)"
    const remote = /^host ([^\s[]+)\[[^\]]*\](?::\d+)? said: (\d{3}[ -].*?)(?: \(in reply to [^)]*\))?$/s.exec(f.reply);
    const smtp = remote ? remote[2]! : /^(\d{3})[ -]/.test(f.reply) ? f.reply : undefined;
    const oneLine = (t: string) => t.replace(/[\r\n]+/g, ' ');
    return [
      `Final-Recipient: rfc822; ${f.address}`,
      'Action: failed',
      `Status: ${m ? m[1]!.replace(/^[24]/, '5') : '5.0.0'}`,
      ...(remote ? [`Remote-MTA: dns; ${remote[1]}`] : []),
      smtp ? `Diagnostic-Code: smtp; ${oneLine(smtp)}` : `Diagnostic-Code: x-portcullis; ${oneLine(f.reply)}`,
    ].join('\r\n');
  }).join('\r\n\r\n');
  const text = [
    `From: Mail Delivery System <MAILER-DAEMON@${opts.hostname}>`,
    `To: <${opts.sender}>`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${opts.id}.dsn@${opts.hostname}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Your message ${opts.id} sent on ${rfc5322Date(opts.arrived)} could not be delivered to:`,
    '',
    list,
    '',
    'The headers of your message are attached.',
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    `Reporting-MTA: dns; ${opts.hostname}`,
    `X-Portcullis-Queue-ID: ${opts.id}`,
    `Arrival-Date: ${rfc5322Date(opts.arrived)}`,
    '',
    perRecipient,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(`${text}\r\n`), opts.originalHeaders, Buffer.from(`\r\n--${boundary}--\r\n`)]);
}

/** The header section of a message (up to the first empty line), bounded. */
export function headerSection(message: Buffer, limit = 64 * 1024): Buffer {
  const end = message.indexOf('\r\n\r\n');
  return message.subarray(0, Math.min(end < 0 ? message.length : end + 2, limit));
}
