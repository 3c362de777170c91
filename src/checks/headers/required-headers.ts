// RFC 5322 s3.6 requires Date and From; Message-ID SHOULD be there. Real mail clients always
// write them, bulk senders and scripts often don't. Submission clients get them added by the
// MUA, so on authenticated mail these are only hints.
import type { Check } from '../types.js';

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
    if (message.bareNewlines) symbols.push({ name: 'BARE_NEWLINE', reason: `${message.bareNewlines} bare LF or CR line ending(s), normalised` });
    return { symbols };
  },
};
