// Every reply text of the POP3 server in one place. Where Dovecot (2.3) answers the same
// situation, its wording and RFC 3206 response code are used, so clients and scripts written
// against Dovecot see what they expect; RFC 1939 fixes only "+OK" / "-ERR".

export const TXT = {
  greeting: 'Portcullis ready.',
  // Dovecot with disable_plaintext_auth = yes, word for word.
  plaintextDisallowed: '[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.',
  plaintextDisabled: '[AUTH] Plaintext authentication disabled.',
  authFailed: '[AUTH] Authentication failed.',
  loggedIn: 'Logged in.',
  noUser: 'No username given.',
  badBase64: '[AUTH] Invalid base64 in response.',
  authAborted: 'Authentication aborted by client.',
  unsupportedMech: '[AUTH] Unsupported authentication mechanism.',
  apop: 'APOP not enabled.',
  inUse: '[IN-USE] Mailbox is locked by another POP3 session.',
  userLimit: '[IN-USE] Too many sessions for this account.',
  mailboxError: '[SYS/TEMP] Cannot open the mailbox now, try again later.',
  accountsUnavailable: '[SYS/TEMP] Temporary authentication failure, try again later.',
  ipLimit: '[SYS/TEMP] Too many connections from your address.',
  serverBusy: '[SYS/TEMP] Too many connections, try again later.',
  shuttingDown: '[SYS/TEMP] Server shutting down.',
  beginTls: 'Begin TLS negotiation now.',
  tlsActive: 'TLS is already active.',
  tlsUnavailable: "TLS support isn't enabled.",
  stlsAfterLogin: 'STLS is only allowed before login.',
  alreadyLoggedIn: 'Already logged in.',
  notLoggedIn: 'Not logged in.',
  unknown: 'Unknown command.',
  unknownVerb: (verb: string) => `Unknown command: ${verb}`,
  lineTooLong: 'Line too long.',
  tooManyErrors: 'Too many bad commands.',
  idle: 'Disconnected for inactivity.',
  loginTimeout: 'Disconnected: no login in time.',
  logout: 'Logging out.',
  logoutDeleted: 'Logging out, messages deleted.',
  updateFailed: '[SYS/TEMP] Some deleted messages could not be removed.',
  noSuchMessage: (n: string) => `There's no message ${n}.`,
  invalidNumber: (arg: string) => `Invalid message number: ${arg}`,
  invalidLines: (arg: string) => `Invalid number of lines: ${arg}`,
  noise: 'Too many arguments.',
  missingArgument: 'Missing argument.',
  deleted: 'Message is deleted.',
  vanished: 'Message was removed by another client.',
  marked: 'Marked to be deleted.',
  readError: '[SYS/TEMP] Cannot read the message now.',
  internal: '[SYS/TEMP] Internal error.',
} as const;

/** Bound for what a client's own text may put into a reply. */
export function shown(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}...` : clean;
}
