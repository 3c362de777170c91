// The three protocols as far as the audit speaks them: greetings, capabilities, STARTTLS and
// the polite goodbye (QUIT, LOGOUT) that ends every probe. Replies are read strictly enough to
// tell a mail server from something else ("garbage" is a finding, not a crash).
import type tls from 'node:tls';
import { Dialogue, ProbeError, type DialogueOptions } from './dialogue.js';
import type { Protocol } from './services.js';

// ---------------------------------------------------------------------------------------------
// SMTP

export interface SmtpReply {
  readonly code: number;
  /** Every line as received ("250-mx.example.org", "250 SIZE 1000"). */
  readonly lines: readonly string[];
}

const MAX_REPLY_LINES = 200;

export async function readSmtpReply(d: Dialogue, timeoutMs?: number): Promise<SmtpReply> {
  const lines: string[] = [];
  for (;;) {
    const line = await d.line(timeoutMs);
    const m = /^([2-5]\d\d)(?:([ -])|$)/.exec(line);
    if (!m) throw new ProbeError('garbage', `not an SMTP reply: ${JSON.stringify(line.slice(0, 120))}`);
    lines.push(line);
    if (m[2] !== '-') return { code: Number(m[1]), lines };
    if (lines.length >= MAX_REPLY_LINES) throw new ProbeError('garbage', `an SMTP reply of more than ${MAX_REPLY_LINES} lines`);
  }
}

export async function smtpCommand(d: Dialogue, line: string): Promise<SmtpReply> {
  d.send(line);
  return readSmtpReply(d);
}

export function replyText(r: SmtpReply): string {
  return r.lines.join('\n');
}

export interface Ehlo {
  readonly reply: SmtpReply;
  /** Keywords with their parameters, upper-cased keyword ("AUTH PLAIN LOGIN", "STARTTLS"). */
  readonly capabilities: readonly string[];
}

/** EHLO, falling back to HELO when EHLO is refused (then no capabilities). */
export async function ehlo(d: Dialogue, name: string): Promise<Ehlo> {
  const reply = await smtpCommand(d, `EHLO ${name}`);
  if (reply.code === 250) {
    const capabilities = reply.lines.slice(1).map((l) => l.slice(4).trim()).map((c) => {
      const [kw, ...rest] = c.split(/\s+/);
      return [kw!.toUpperCase(), ...rest].join(' ');
    });
    return { reply, capabilities };
  }
  const helo = await smtpCommand(d, `HELO ${name}`);
  return { reply: helo, capabilities: [] };
}

export function hasCapability(caps: readonly string[], keyword: string): boolean {
  return caps.some((c) => c === keyword || c.startsWith(`${keyword} `) || c.startsWith(`${keyword}=`));
}

/** The SASL mechanisms of "AUTH PLAIN LOGIN" (and the old "AUTH=LOGIN" form). */
export function smtpAuthMechanisms(caps: readonly string[]): string[] {
  const out = new Set<string>();
  for (const c of caps) {
    const m = /^AUTH[ =](.*)$/i.exec(c);
    if (m) for (const mech of m[1]!.split(/\s+/).filter(Boolean)) out.add(mech.toUpperCase());
  }
  return [...out];
}

/** The host name a banner announces ("220 mx.example.org ESMTP" → mx.example.org). */
export function bannerHostname(banner: SmtpReply): string | undefined {
  const m = /^220[ -]([^\s]+)/.exec(banner.lines[0] ?? '');
  const name = m?.[1];
  return name && /^[a-z0-9.-]+\.[a-z0-9-]+$/i.test(name) ? name.toLowerCase() : undefined;
}

/** QUIT and a short wait for its reply; then the connection is closed whatever happened. */
export async function smtpQuit(d: Dialogue): Promise<void> {
  try {
    if (!d.closed) {
      d.send('QUIT');
      await readSmtpReply(d, 2000);
    }
  } catch {
    // the goodbye is a courtesy
  } finally {
    d.close();
  }
}

// ---------------------------------------------------------------------------------------------
// IMAP

export interface ImapResponse {
  readonly untagged: readonly string[];
  /** The tagged status line. */
  readonly tagged: string;
  readonly status: 'OK' | 'NO' | 'BAD';
}

export async function readImapGreeting(d: Dialogue): Promise<string> {
  const line = await d.line();
  if (!/^\* (OK|PREAUTH|BYE)\b/i.test(line)) throw new ProbeError('garbage', `not an IMAP greeting: ${JSON.stringify(line.slice(0, 120))}`);
  return line;
}

export async function imapCommand(d: Dialogue, tag: string, command: string, shown?: string): Promise<ImapResponse> {
  d.send(`${tag} ${command}`, shown === undefined ? undefined : `${tag} ${shown}`);
  const untagged: string[] = [];
  for (;;) {
    const line = await d.line();
    if (line.startsWith(`${tag} `)) {
      const m = /^\S+ (OK|NO|BAD)\b/i.exec(line);
      if (!m) throw new ProbeError('garbage', `not an IMAP status response: ${JSON.stringify(line.slice(0, 120))}`);
      return { untagged, tagged: line, status: m[1]!.toUpperCase() as ImapResponse['status'] };
    }
    untagged.push(line);
    if (untagged.length > MAX_REPLY_LINES) throw new ProbeError('garbage', 'an IMAP response of too many lines');
  }
}

/** Capabilities from "[CAPABILITY …]" in a greeting or a "* CAPABILITY …" line, upper-cased. */
export function imapCapabilities(lines: readonly string[]): string[] | undefined {
  for (const line of lines) {
    const m = /\[CAPABILITY ([^\]]*)\]/i.exec(line) ?? /^\* CAPABILITY (.*)$/i.exec(line);
    if (m) return m[1]!.trim().split(/\s+/).map((c) => c.toUpperCase());
  }
  return undefined;
}

export async function imapLogout(d: Dialogue): Promise<void> {
  try {
    if (!d.closed) {
      d.send('z LOGOUT');
      for (let i = 0; i < 5; i++) if ((await d.line(2000)).startsWith('z ')) break;
    }
  } catch {
    // the goodbye is a courtesy
  } finally {
    d.close();
  }
}

// ---------------------------------------------------------------------------------------------
// POP3

export interface Pop3Reply {
  readonly ok: boolean;
  readonly line: string;
}

export async function readPop3(d: Dialogue): Promise<Pop3Reply> {
  const line = await d.line();
  if (/^\+OK\b/i.test(line)) return { ok: true, line };
  if (/^-ERR\b/i.test(line)) return { ok: false, line };
  throw new ProbeError('garbage', `not a POP3 reply: ${JSON.stringify(line.slice(0, 120))}`);
}

export async function pop3Command(d: Dialogue, line: string, shown?: string): Promise<Pop3Reply> {
  d.send(line, shown);
  return readPop3(d);
}

/** The lines of a multi-line answer after its +OK, up to the terminating ".". */
export async function readPop3Lines(d: Dialogue): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const line = await d.line();
    if (line === '.') return out;
    out.push(line.startsWith('..') ? line.slice(1) : line);
    if (out.length > MAX_REPLY_LINES) throw new ProbeError('garbage', 'a POP3 answer of too many lines');
  }
}

export async function pop3Quit(d: Dialogue): Promise<void> {
  try {
    if (!d.closed) {
      d.send('QUIT');
      await d.line(2000);
    }
  } catch {
    // the goodbye is a courtesy
  } finally {
    d.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Any protocol

export function goodbye(d: Dialogue, protocol: Protocol): Promise<void> {
  return protocol === 'smtp' ? smtpQuit(d) : protocol === 'imap' ? imapLogout(d) : pop3Quit(d);
}

/**
 * Opens a session that has TLS up: implicit TLS (the greeting read inside it), or the greeting,
 * (EHLO,) STARTTLS/STLS and the handshake. Throws a ProbeError whose kind is "tls" only when
 * the handshake itself failed, so that callers can tell a refused protocol version from a
 * server that does not offer TLS at all.
 */
export async function openTls(
  protocol: Protocol, implicit: boolean, dialogue: Omit<DialogueOptions, 'implicitTls'>, tlsOptions: tls.ConnectionOptions, heloName: string,
): Promise<Dialogue> {
  if (implicit) {
    const d = await Dialogue.open({ ...dialogue, implicitTls: tlsOptions });
    try {
      if (protocol === 'smtp') await readSmtpReply(d);
      else if (protocol === 'imap') await readImapGreeting(d);
      else await readPop3(d);
    } catch (err) {
      d.close();
      throw err;
    }
    return d;
  }
  const d = await Dialogue.open(dialogue);
  try {
    if (protocol === 'smtp') {
      const banner = await readSmtpReply(d);
      if (banner.code !== 220) throw new ProbeError('error', `greeting refused: ${replyText(banner)}`);
      const e = await ehlo(d, heloName);
      if (!hasCapability(e.capabilities, 'STARTTLS')) throw new ProbeError('error', 'STARTTLS is not offered');
      const r = await smtpCommand(d, 'STARTTLS');
      if (r.code !== 220) throw new ProbeError('error', `STARTTLS refused: ${replyText(r)}`);
    } else if (protocol === 'imap') {
      await readImapGreeting(d);
      const r = await imapCommand(d, 's', 'STARTTLS');
      if (r.status !== 'OK') throw new ProbeError('error', `STARTTLS refused: ${r.tagged}`);
    } else {
      await readPop3(d);
      const r = await pop3Command(d, 'STLS');
      if (!r.ok) throw new ProbeError('error', `STLS refused: ${r.line}`);
    }
    await d.startTls(tlsOptions);
  } catch (err) {
    d.close();
    throw err;
  }
  return d;
}
