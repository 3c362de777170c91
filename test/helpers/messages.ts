// Test messages: CRLF line ends, a unique marker in the subject and body so a test finds its own
// message among others in a mailbox or a sink.
import crypto from 'node:crypto';

/** A unique marker such as "t-3f9a1c2b7d". */
export function marker(prefix = 't'): string {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

export interface MessageOptions {
  from: string;
  to: string;
  subject: string;
  body?: string;
  extraHeaders?: string[];
}

/** A small RFC 5322 message with CRLF line ends. */
export function makeMessage({ from, to, subject, body, extraHeaders = [] }: MessageOptions): string {
  const headers = [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${crypto.randomBytes(8).toString('hex')}@example.net>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    ...extraHeaders,
  ];
  const text = body ?? `Hello,\r\nthis is ${subject}.\r\n`;
  return `${headers.join('\r\n')}\r\n\r\n${text.endsWith('\r\n') ? text : `${text}\r\n`}`;
}

/**
 * Splits a stored message into what the gateway prepended and what follows, given the original.
 * Returns undefined when the stored bytes do not end with the original.
 */
export function splitPrepended(stored: Buffer, original: Buffer): { prefix: string } | undefined {
  if (stored.length < original.length) return undefined;
  const tail = stored.subarray(stored.length - original.length);
  if (!tail.equals(original)) return undefined;
  return { prefix: stored.subarray(0, stored.length - original.length).toString('utf8') };
}

/** True when every line of `prefix` is a header field line or a folded continuation. */
export function isHeaderBlock(prefix: string): boolean {
  if (prefix === '') return true;
  if (!prefix.endsWith('\r\n')) return false;
  const lines = prefix.slice(0, -2).split('\r\n');
  return lines.every((l, i) => (i > 0 && /^[ \t]+\S/.test(l)) || /^[\x21-\x39\x3b-\x7e]+:/.test(l));
}
