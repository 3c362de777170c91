// The open-relay probe: every form of the battery (relay-forms.ts) as MAIL FROM then RCPT TO,
// each transaction stopped at the RCPT reply and reset with RSET — never DATA, so no message is
// ever sent — a few transactions per session (servers slow down and disconnect clients that
// collect errors), every session ended with QUIT. STARTTLS is used when offered, as a spammer
// would: some servers only judge relaying after it.
import net from 'node:net';
import { Dialogue, ProbeError } from './dialogue.js';
import { cleanEvidence, type Finding } from './findings.js';
import { dialogueOptions, endpointLabel, inspectingTls, type Endpoint, type ProbeContext } from './probe-context.js';
import { ehlo, hasCapability, readSmtpReply, replyText, smtpCommand, smtpQuit, type SmtpReply } from './protocols.js';
import { fillForm, RELAY_FORMS, type RelayForm } from './relay-forms.js';

/** Transactions per session: under Postfix's smtpd_soft_error_limit (10) and Portcullis' tarpit.errors. */
export const FORMS_PER_SESSION = 5;
const MAX_SESSIONS = 12;

export type RelayVerdict = 'accepted' | 'refused' | 'deferred' | 'untested';

export interface RelayResult {
  readonly form: RelayForm;
  readonly mailFrom: string;
  readonly rcptTo: string;
  readonly verdict: RelayVerdict;
  /** "MAIL FROM:<…> → 250 2.1.0 Ok; RCPT TO:<…> → 554 5.7.1 …". */
  readonly exchange: string;
}

/** Opens an SMTP session ready for transactions: banner, EHLO, STARTTLS and EHLO again when offered. */
export async function openTransactionSession(e: Endpoint, ctx: ProbeContext): Promise<Dialogue> {
  const implicit = e.service.tls === 'implicit';
  const d = await Dialogue.open({ ...dialogueOptions(e, ctx), implicitTls: implicit ? inspectingTls(e, ctx) : undefined });
  try {
    const banner = await readSmtpReply(d);
    if (banner.code !== 220) throw new ProbeError('error', `greeting refused: ${replyText(banner)}`);
    const first = await ehlo(d, ctx.heloName);
    if (!implicit && hasCapability(first.capabilities, 'STARTTLS')) {
      const r = await smtpCommand(d, 'STARTTLS');
      if (r.code === 220) {
        await d.startTls(inspectingTls(e, ctx));
        await ehlo(d, ctx.heloName);
      }
    }
    return d;
  } catch (err) {
    await smtpQuit(d);
    throw err;
  }
}

/** One transaction: MAIL, RCPT if MAIL was accepted, then RSET. */
export async function tryTransaction(d: Dialogue, mailFrom: string, rcptTo: string): Promise<{ mail: SmtpReply; rcpt?: SmtpReply }> {
  const mail = await smtpCommand(d, `MAIL FROM:<${mailFrom}>`);
  let rcpt: SmtpReply | undefined;
  if (mail.code >= 200 && mail.code < 300) rcpt = await smtpCommand(d, `RCPT TO:<${rcptTo}>`);
  if (!d.closed && mail.code !== 421 && rcpt?.code !== 421) await smtpCommand(d, 'RSET');
  return { mail, rcpt };
}

export function addressLiteral(address: string): string {
  return net.isIPv6(address) ? `IPv6:${address}` : address;
}

export async function probeRelay(e: Endpoint, ctx: ProbeContext, srvname?: string): Promise<{ results: RelayResult[]; findings: Finding[] }> {
  const target = endpointLabel(e);
  const values = {
    to: 'relaytest', from: 'audit', ext: ctx.relayDomain, srvname: srvname ?? e.host.replace(/\.$/, ''),
    ip: addressLiteral(e.address), domain: ctx.domain,
  };
  const results: RelayResult[] = [];
  let next = 0;
  let lastError: unknown;
  const broke = new Map<number, number>();
  let failedOpens = 0;
  for (let session = 0; next < RELAY_FORMS.length && session < MAX_SESSIONS && !ctx.signal?.aborted; session++) {
    let d: Dialogue;
    try {
      d = await openTransactionSession(e, ctx);
    } catch (err) {
      lastError = err;
      if (err instanceof ProbeError && (err.kind === 'refused' || err.kind === 'unreachable' || err.kind === 'aborted')) break;
      if (++failedOpens >= 2) break;
      continue;
    }
    failedOpens = 0;
    try {
      for (let n = 0; n < FORMS_PER_SESSION && next < RELAY_FORMS.length && !d.closed; n++) {
        const form = RELAY_FORMS[next]!;
        const mailFrom = fillForm(form.mailFrom, values);
        const rcptTo = fillForm(form.rcptTo, values);
        const { mail, rcpt } = await tryTransaction(d, mailFrom, rcptTo);
        if (mail.code === 421 || rcpt?.code === 421) {
          // The server is closing the session: the form is tried again in the next one.
          throw new ProbeError('closed', `the server closed the session: ${oneLine(rcpt ?? mail)}`);
        }
        next++;
        const exchange = `MAIL FROM:<${mailFrom}> → ${oneLine(mail)}${rcpt ? `; RCPT TO:<${rcptTo}> → ${oneLine(rcpt)}` : ''}`;
        const decisive = rcpt ?? mail;
        const verdict: RelayVerdict = !rcpt ? (mail.code >= 500 ? 'refused' : 'deferred')
          : decisive.code < 300 ? 'accepted' : decisive.code < 500 ? 'deferred' : 'refused';
        // A refused MAIL FROM tells nothing about relaying when the sender form itself is odd;
        // it still is no relay: the transaction went nowhere.
        results.push({ form, mailFrom, rcptTo, verdict, exchange });
      }
      await smtpQuit(d);
    } catch (err) {
      lastError = err;
      d.close();
      // The form whose transaction broke the session is tried again in the next one, once.
      const times = (broke.get(next) ?? 0) + 1;
      broke.set(next, times);
      if (times >= 2 && next < RELAY_FORMS.length) {
        const form = RELAY_FORMS[next]!;
        const why = err instanceof Error ? err.message : String(err);
        results.push({ form, mailFrom: fillForm(form.mailFrom, values), rcptTo: fillForm(form.rcptTo, values), verdict: 'untested', exchange: `session broke twice: ${why}` });
        next++;
      }
    }
  }
  for (; next < RELAY_FORMS.length; next++) {
    const form = RELAY_FORMS[next]!;
    results.push({ form, mailFrom: fillForm(form.mailFrom, values), rcptTo: fillForm(form.rcptTo, values), verdict: 'untested', exchange: 'not tested' });
  }
  return { results, findings: judgeRelay(target, results, lastError) };
}

function oneLine(r: SmtpReply): string {
  return r.lines.map((l) => l.replace(/^\d{3}[ -]/, '')).join(' / ').replace(/^/, `${r.code} `);
}

function judgeRelay(target: string, results: readonly RelayResult[], lastError: unknown): Finding[] {
  const line = (r: RelayResult) => `[${r.form.id}] ${r.form.technique}: ${r.exchange}`;
  const all = cleanEvidence(results.map(line).join('\n'), 8000);
  const accepted = results.filter((r) => r.verdict === 'accepted');
  const direct = accepted.filter((r) => r.form.direct);
  const tested = results.filter((r) => r.verdict !== 'untested');
  const findings: Finding[] = [];
  const rest = results.filter((r) => r.verdict !== 'accepted');
  const acceptedFirst = () => cleanEvidence([...accepted.map(line), ...(rest.length ? ['', 'not accepted:', ...rest.map(line)] : [])].join('\n'), 10000);
  if (direct.length) {
    findings.push({
      code: 'RELAY_OPEN', area: 'relay', severity: 'critical', target,
      evidence: acceptedFirst(),
      title: `Open relay: accepts mail for another domain from anyone (${accepted.length} of ${tested.length} forms accepted at RCPT)`,
      fix: 'Relay only for authenticated users and your own networks (Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, with mynetworks limited to your hosts).',
    });
  } else if (accepted.length) {
    findings.push({
      code: 'RELAY_ADDRESS_TRICKS', area: 'relay', severity: 'warning', target,
      evidence: acceptedFirst(),
      title: `Accepts ${accepted.length} relay address trick(s) at RCPT (percent hack, bang path, quoted or double @)`,
      fix: 'Make sure such addresses are refused or delivered locally, never relayed (Postfix: allow_percent_hack = no, swap_bangpath = no; reject_non_fqdn_recipient).',
    });
  } else if (tested.length) {
    const deferred = tested.filter((r) => r.verdict === 'deferred').length;
    findings.push({
      code: 'RELAY_REFUSED', area: 'relay', severity: 'ok', target, evidence: all,
      title: `Refuses all ${tested.length} relay forms${deferred ? ` (${deferred} with a temporary refusal: rerun later if the server greylists)` : ''}`,
    });
  }
  const untested = results.length - tested.length;
  if (untested) {
    const why = lastError instanceof Error ? lastError.message : 'sessions failed';
    findings.push({
      code: 'RELAY_INCOMPLETE', area: 'relay', severity: tested.length ? 'info' : 'warning', target,
      evidence: cleanEvidence(`${untested} of ${results.length} forms not tested: ${why}\n${all}`, 8000),
      title: tested.length ? `The relay test is incomplete (${untested} forms not tested)` : 'The relay test could not run',
      fix: 'Rerun the audit; if sessions keep failing, check the server (connection limits, tarpits).',
    });
  }
  return findings;
}
