// GTUBE, the Generic Test for Unsolicited Bulk Email (SpamAssassin's, also honoured by rspamd
// and Stalwart): a message whose text carries the test string is spam beyond any threshold, so
// an administrator can try a set-up end to end without real spam (docs/spam.md "Testing").
import type { Check } from '../types.js';
import { declare } from '../registry.js';

export const GTUBE_STRING = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

export const GTUBE_SYMBOLS = declare('gtube', {
  GTUBE: 'the GTUBE test string (spam by definition, for testing a set-up)',
});

export const gtubeCheck: Check<'data'> = {
  name: 'gtube',
  stage: 'data',
  async run({ message }) {
    const msg = await message.content();
    // The rendered text (SpamAssassin's "body", Subject included) and the raw text parts, so that
    // HTML markup around the string or a Subject carrying it both count.
    const found = msg.bodyText.includes(GTUBE_STRING) || msg.rawBody.includes(GTUBE_STRING);
    return found ? { symbols: [{ name: 'GTUBE', reason: 'GTUBE test string in the message text' }] } : {};
  },
};
