// The `pop3` section of the configuration. Defaults keep to loopback high ports, like the SMTP
// listeners (2525/5870/4650): 1100 for POP3 with STLS, 9950 for POP3S. A site that serves mail
// clients directly binds 110 and 995 instead.
import { z } from 'zod';
import { mailboxListener } from '../listener-config.js';
import { duration } from '../../config/fields.js';

const listener = mailboxListener;

export function defaultPop3Listeners() {
  return [
    { name: 'pop3', address: '127.0.0.1', port: 1100, tls: 'starttls' as const },
    { name: 'pop3s', address: '127.0.0.1', port: 9950, tls: 'implicit' as const },
  ];
}

export const pop3ConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  listeners: z.array(listener).default(defaultPop3Listeners).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((l, i) => {
      if (seen.has(l.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `listener name "${l.name}" is used twice` });
      seen.add(l.name);
    });
  }),
  /** RFC 1939 s3: an autologout timer of at least 10 minutes. Shorter values are accepted (tests) but break slow clients. */
  idle_timeout: duration('10m').refine((ms) => ms >= 1000, 'must be at least 1s (RFC 1939 asks for 10m)'),
  /**
   * Before login: a client that has not logged in this long after connecting is dropped, however
   * busy it keeps the line (the idle timer restarts on every byte; like Dovecot's login timeout).
   */
  login_timeout: duration('60s').refine((ms) => ms >= 1000, 'must be at least 1s'),
  /** Sessions open at once from one client address (authenticated or not). */
  max_connections_per_ip: z.number().int().min(1).max(100_000).default(20),
  /** Sessions of one account at once, counted from the moment its password is being checked. */
  max_connections_per_user: z.number().int().min(1).max(10_000).default(10),
  /** Sessions open at once on all POP3 listeners together. */
  max_connections: z.number().int().min(1).max(1_000_000).default(1000),
  /** Failed commands after which the session is closed (Dovecot closes after 20 in the mail process, 3 at login). */
  max_errors: z.number().int().min(1).max(1000).default(10),
}).prefault({});

export type Pop3Config = z.output<typeof pop3ConfigSchema>;
export type Pop3ListenerConfig = Pop3Config['listeners'][number];
