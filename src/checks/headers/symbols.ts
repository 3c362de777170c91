// The symbols of the required-headers check (required-headers.ts).
import { declare } from '../registry.js';

export const HEADER_SYMBOLS = declare('headers', {
  MISSING_DATE: 'no Date header (RFC 5322 s3.6.1)',
  MISSING_FROM: 'no From header (RFC 5322 s3.6.2)',
  MULTIPLE_FROM: 'more than one From header',
  MISSING_MESSAGE_ID: 'no Message-ID header',
  DATE_IN_FUTURE: 'the Date is more than 12 hours after the message arrived (bulk tools date ahead to sort on top)',
  BARE_NEWLINE: 'bare LF/CR in DATA (normalised); common in scripts, and in smuggling attempts',
});
