// The symbol of the greeting defence (the session's greeting delay, src/smtp/session.ts).
import { declare } from '../registry.js';

export const GREETING_SYMBOLS = declare('greeting', {
  EARLY_TALKER: ['talked before the greeting: refused at RCPT (550 5.5.1)', 'reject'],
});
