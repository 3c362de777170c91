// The IMAP probe (ports 143 and 993): greeting, capabilities, STARTTLS, and clear-text login
// exposure on 143. RFC 3501 s6.2.3/s7.2.1: a server that refuses LOGIN without TLS says so with
// LOGINDISABLED. When that capability is missing, the probe tries LOGIN once with credentials
// that cannot be anyone's (probeCredentials) and reads the answer: a refusal that names the
// missing encryption ([PRIVACYREQUIRED], "plaintext", "TLS"…) is safe; "authentication failed"
// means the server checked a password sent in clear text. Every session ends with LOGOUT.
import type { Dialogue } from './dialogue.js';
import { cleanEvidence, type Finding } from './findings.js';
import { endpointLabel, probeCredentials, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding, openProbe, type ProbeResult } from './probe-findings.js';
import { imapCapabilities, imapCommand, imapLogout, readImapGreeting } from './protocols.js';

export interface MailboxFacts {
  readonly reachable: boolean;
  readonly greeting?: string;
  readonly capabilities?: readonly string[];
  readonly tls: boolean;
}

/** A refusal that is about the missing encryption, not about the credentials. */
export const PRIVACY_REFUSAL = /PRIVACYREQUIRED|plain ?text|cleartext|clear text|TLS|SSL|STARTTLS|STLS|encrypt|secure|privacy/i;

export async function probeImap(e: Endpoint, ctx: ProbeContext): Promise<ProbeResult<MailboxFacts>> {
  const target = endpointLabel(e);
  const implicit = e.service.tls === 'implicit';
  const findings: Finding[] = [];
  const opened = await openProbe(e, ctx);
  if (opened.unreachable) return opened.unreachable;
  const d = opened.dialogue;
  let greeting: string | undefined;
  let caps: string[] | undefined;
  try {
    greeting = await readImapGreeting(d);
    if (/^\* BYE/i.test(greeting)) {
      findings.push({
        code: 'IMAP_GREETING_BYE', area: 'reachability', severity: 'warning', target, evidence: cleanEvidence(greeting),
        title: 'The IMAP server refuses the session at the greeting', fix: 'Check why this client is refused.',
      });
      d.close();
      return { facts: { reachable: true, greeting, tls: false }, findings };
    }
    caps = imapCapabilities([greeting]);
    let capsEvidence = greeting;
    if (!caps) {
      const r = await imapCommand(d, 'a', 'CAPABILITY');
      caps = imapCapabilities(r.untagged) ?? [];
      capsEvidence = [...r.untagged, r.tagged].join('\n');
    }
    if (!implicit) {
      const starttls = caps.includes('STARTTLS');
      findings.push(starttls
        ? { code: 'IMAP_STARTTLS', area: 'encryption', severity: 'ok', target, evidence: cleanEvidence(capsEvidence), title: 'STARTTLS is offered' }
        : {
          code: 'IMAP_NO_STARTTLS', area: 'encryption', severity: 'warning', target, evidence: cleanEvidence(capsEvidence),
          title: 'IMAP on this port offers no STARTTLS', fix: 'Enable STARTTLS on port 143, or close it and let users connect to 993 (implicit TLS).',
        });
      findings.push(await cleartextLogin(d, target, caps, capsEvidence));
    }
    await imapLogout(d);
    return { facts: { reachable: true, greeting, capabilities: caps, tls: implicit || caps.includes('STARTTLS') }, findings };
  } catch (err) {
    findings.push(failureFinding(e, err, d.transcript));
    d.close();
    return { facts: { reachable: greeting !== undefined, greeting, capabilities: caps, tls: implicit || !!caps?.includes('STARTTLS') }, findings };
  }
}

async function cleartextLogin(d: Dialogue, target: string, caps: readonly string[], capsEvidence: string): Promise<Finding> {
  if (caps.includes('LOGINDISABLED')) {
    return { code: 'IMAP_LOGINDISABLED', area: 'encryption', severity: 'ok', target, evidence: cleanEvidence(capsEvidence), title: 'LOGINDISABLED before STARTTLS' };
  }
  const probe = probeCredentials();
  const r = await imapCommand(d, 'b', `LOGIN "${probe.user}" "${probe.password}"`);
  const evidence = cleanEvidence(`${capsEvidence}\nC: b LOGIN "${probe.user}" "${probe.password}"  (made-up credentials)\n${[...r.untagged, r.tagged].join('\n')}`);
  if (r.status === 'OK') {
    return {
      code: 'IMAP_ACCEPTS_ANY_LOGIN', area: 'encryption', severity: 'critical', target, evidence,
      title: 'IMAP accepted a made-up login in clear text', fix: 'Check the authentication backend at once: it accepts credentials that belong to nobody.',
    };
  }
  if (r.status === 'BAD' || PRIVACY_REFUSAL.test(r.tagged)) {
    return {
      code: 'IMAP_LOGINDISABLED_MISSING', area: 'encryption', severity: 'warning', target, evidence,
      title: 'LOGIN is refused before TLS, but LOGINDISABLED is not advertised',
      fix: 'Advertise LOGINDISABLED before STARTTLS so that clients never send a password in clear text (Dovecot: disable_plaintext_auth = yes).',
    };
  }
  return {
    code: 'IMAP_PLAINTEXT_LOGIN', area: 'encryption', severity: 'critical', target, evidence,
    title: 'IMAP checks passwords sent in clear text (no LOGINDISABLED before STARTTLS)',
    fix: 'Refuse logins without TLS (Dovecot: disable_plaintext_auth = yes, or ssl = required).',
  };
}
