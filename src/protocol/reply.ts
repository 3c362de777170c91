// SMTP replies as typed values. Every reply the gateway sends comes from here, with its basic
// code (RFC 5321), its enhanced status code (RFC 3463 / RFC 5248) and a human text, so that
// texts are consistent and greppable. Wire formatting happens in one place: formatReply().

export interface Reply {
  readonly code: number;
  /** Enhanced status code such as "5.7.1"; omitted only for the greeting and 421 before EHLO. */
  readonly enhanced?: string;
  readonly text: string;
}

/** A failure that carries the reply the client should see, and optionally its cause. */
export class SmtpError extends Error {
  constructor(readonly reply: Reply, options?: { cause?: unknown }) {
    super(`${reply.code} ${reply.enhanced ?? ''} ${reply.text}`.replace(/\s+/g, ' '), options);
    this.name = 'SmtpError';
  }
}

export function reply(code: number, enhanced: string | undefined, text: string): Reply {
  return { code, enhanced, text };
}

/** Formats a (possibly multi-line) reply with CRLF line ends. */
export function formatReply(r: Reply, enhancedCodes = true): string {
  const lines = r.text.split(/\r?\n/);
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? ' ' : '-';
    const ec = enhancedCodes && r.enhanced ? `${r.enhanced} ` : '';
    out += `${r.code}${sep}${ec}${lines[i]}\r\n`;
  }
  return out;
}

/** A reply on one line, for logs and reports: "554 5.7.1 text" (a multi-line text joined by spaces). */
export function replyLine(r: Reply): string {
  return `${r.code} ${r.enhanced ?? ''} ${r.text}`.replace(/\s+/g, ' ').trim();
}

export const isPermanent = (r: Reply): boolean => r.code >= 500;
export const isTemporary = (r: Reply): boolean => r.code >= 400 && r.code < 500;

/** The catalogue. Texts follow Postfix where Postfix has a well-known wording. */
export const R = {
  ok: reply(250, '2.0.0', 'Ok'),
  senderOk: reply(250, '2.1.0', 'Ok'),
  recipientOk: reply(250, '2.1.5', 'Ok'),
  resetOk: reply(250, '2.0.0', 'Ok'),
  noopOk: reply(250, '2.0.0', 'Ok'),
  queued: (id: string) => reply(250, '2.0.0', `Ok: queued as ${id}`),
  startData: reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  bye: reply(221, '2.0.0', 'Bye'),
  help: reply(214, '2.0.0', 'See https://www.rfc-editor.org/rfc/rfc5321'),
  startTls: reply(220, '2.0.0', 'Ready to start TLS'),
  authOk: reply(235, '2.7.0', 'Authentication successful'),
  vrfyDisabled: reply(502, '5.5.1', 'VRFY command is disabled'),
  expnDisabled: reply(502, '5.5.1', 'EXPN command is disabled'),

  // 4xx: try again
  shuttingDown: (host: string) => reply(421, '4.3.2', `${host} Service shutting down, closing transmission channel`),
  tooManyConnections: (host: string) => reply(421, '4.7.0', `${host} Error: too many connections`),
  idleTimeout: (host: string) => reply(421, '4.4.2', `${host} Error: timeout exceeded`),
  sessionTooLong: (host: string) => reply(421, '4.4.2', `${host} Error: session too long, reconnect to go on`),
  tooManyErrors: (host: string) => reply(421, '4.7.0', `${host} Error: too many errors`),
  tooManyRecipients: reply(452, '4.5.3', 'Error: too many recipients'),
  queueFailure: reply(451, '4.3.0', 'Error: queue file write error, try again later'),
  localError: reply(451, '4.3.0', 'Error: local error in processing, try again later'),
  tlsUnavailable: reply(454, '4.7.0', 'TLS not available due to local problem'),
  insufficientStorage: reply(452, '4.3.1', 'Insufficient system storage'),

  // 5xx: protocol
  unknownCommand: reply(500, '5.5.2', 'Error: command not recognized'),
  lineTooLong: reply(500, '5.5.2', 'Error: line too long'),
  syntax: (what: string) => reply(501, '5.5.4', `Syntax: ${what}`),
  badSequence: (what: string) => reply(503, '5.5.1', `Error: ${what}`),
  heloFirst: reply(503, '5.5.1', 'Error: send HELO/EHLO first'),
  nestedMail: reply(503, '5.5.1', 'Error: nested MAIL command'),
  needMail: reply(503, '5.5.1', 'Error: need MAIL command'),
  needRcpt: reply(503, '5.5.1', 'Error: need RCPT command'),
  alreadyTls: reply(503, '5.5.1', 'Error: TLS already active'),
  alreadyAuth: reply(503, '5.5.1', 'Error: already authenticated'),
  authInTransaction: reply(503, '5.5.1', 'Error: MAIL transaction in progress'),
  unsupportedParam: (p: string) => reply(555, '5.5.4', `Unsupported option: ${p}`),
  badParamValue: (p: string) => reply(501, '5.5.4', `Bad parameter value: ${p}`),
  pipeliningViolation: reply(554, '5.5.0', 'Error: SMTP protocol synchronization'),
  bareNewline: reply(550, '5.5.2', 'Error: bare <LF> or <CR> received; lines must end with <CR><LF>'),
  messageTooBig: reply(552, '5.3.4', 'Error: message file too big'),
  sizeExceedsLimit: reply(552, '5.3.4', 'Message size exceeds fixed limit'),
  noValidRecipients: reply(554, '5.5.1', 'Error: no valid recipients'),

  // 5xx: addresses and policy
  badSenderSyntax: (a: string) => reply(501, '5.1.7', `Bad sender address syntax: ${a}`),
  badRecipientSyntax: (a: string) => reply(501, '5.1.3', `Bad recipient address syntax: ${a}`),
  needFqdnRecipient: (a: string) => reply(550, '5.1.3', `<${a}>: Recipient address rejected: need fully-qualified address`),
  utf8NeedsSmtputf8: (a: string) => reply(553, '5.6.7', `<${a}>: non-ASCII address requires the SMTPUTF8 parameter`),
  unknownUser: (a: string) => reply(550, '5.1.1', `<${a}>: Recipient address rejected: User unknown in local recipient table`),
  unknownRelayUser: (a: string) => reply(550, '5.1.1', `<${a}>: Recipient address rejected: User unknown in relay recipient table`),
  relayDenied: (a: string) => reply(554, '5.7.1', `<${a}>: Relay access denied`),
  authRequired: reply(530, '5.7.0', 'Authentication required'),
  senderNotOwned: (a: string, user: string) => reply(553, '5.7.1', `<${a}>: Sender address rejected: not owned by user ${user}`),
  encryptionRequired: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  mustStartTls: reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authUnsupported: reply(504, '5.5.4', 'Unrecognized authentication type'),
  authFailed: reply(535, '5.7.8', 'Error: authentication failed'),
  authCancelled: reply(501, '5.7.0', 'Authentication aborted'),
  authBadBase64: reply(501, '5.5.2', 'Error: cannot decode response'),
  authNotAvailable: reply(503, '5.5.1', 'Error: authentication not enabled'),
  policyReject: (text: string) => reply(554, '5.7.1', text),
  policyTempfail: (text: string) => reply(451, '4.7.1', text),
} as const;
