// The `imap` section of the configuration: listeners (STARTTLS on 1430, implicit TLS on 9930 in
// the embedded defaults, 143/993 in a real deployment) and the protocol limits of a session.
import { z } from 'zod';
import { mailboxListener } from '../listener-config.js';
import { duration, size } from '../../config/fields.js';
import { parseSize } from '../../config/units.js';

const imapListener = mailboxListener;

export function defaultImapListeners() {
  return [
    { name: 'imap', address: '127.0.0.1', port: 1430, tls: 'starttls' as const },
    { name: 'imaps', address: '127.0.0.1', port: 9930, tls: 'implicit' as const },
  ];
}

export const imapConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  listeners: z.array(imapListener).min(1).default(defaultImapListeners),
  max_connections_per_user: z.number().int().min(1).max(100_000).default(20),
  max_connections_per_ip: z.number().int().min(1).max(100_000).default(50),
  /** Most connections in all (a ceiling on memory). */
  max_connections: z.number().int().min(1).max(1_000_000).default(5000),
  /** After login; RFC 3501 5.4 asks for at least 30 minutes (IDLE clients re-issue within 29). */
  idle_timeout: duration('30m'),
  /**
   * Before login: a client that does not log in this long after connecting is dropped, however
   * busy it keeps the line (a deadline from the connection, like Dovecot's login timeout).
   */
  login_timeout: duration('60s'),
  /** Longest command line (without literals), bytes. */
  max_line: size('64KiB'),
  /** Largest literal (APPEND); defaults to smtp.max_message_size. */
  max_literal: z.union([z.string(), z.number()]).optional().transform((v, ctx) => {
    if (v === undefined) return undefined;
    const bytes = parseSize(v);
    if (bytes === undefined || bytes < 1024) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a size of at least 1KiB (use e.g. 25MiB)` });
      return z.NEVER;
    }
    return bytes;
  }),
  /** BAD replies after which the connection is closed. */
  max_bad_commands: z.number().int().min(1).max(1000).default(20),
}).prefault({});

export type ImapConfig = z.output<typeof imapConfigSchema>;
export type ImapListenerConfig = ImapConfig['listeners'][number];
