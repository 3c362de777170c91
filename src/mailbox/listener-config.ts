// One mailbox-access listener (IMAP or POP3), as both configuration sections declare them.
import { z } from 'zod';
import { port } from '../config/fields.js';

export const mailboxListener = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]+$/i, 'must be a short name of letters, digits, - and _'),
  address: z.string().default('127.0.0.1'),
  port,
  /**
   * starttls: clear text until STARTTLS/STLS, and no login before it (RFC 2595, RFC 3501
   * LOGINDISABLED); implicit: TLS from the first byte (RFC 8314).
   */
  tls: z.enum(['starttls', 'implicit']),
});
