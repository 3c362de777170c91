// The POP3 probe (ports 110 and 995): greeting, CAPA, STLS, and clear-text login exposure on
// 110. POP3 has no LOGINDISABLED; the only way to know is to try. The probe sends USER and, if
// the server goes on, PASS with credentials that cannot be anyone's (probeCredentials), reads
// the answer and QUITs. A refusal that names the missing encryption is safe; "authentication
// failed" means the server checked a password sent in clear text.
import type { Dialogue } from './dialogue.js';
import { cleanEvidence, type Finding } from './findings.js';
import type { MailboxFacts } from './imap-probe.js';
import { PRIVACY_REFUSAL } from './imap-probe.js';
import { endpointLabel, probeCredentials, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding, openProbe, type ProbeResult } from './probe-findings.js';
import { pop3Command, pop3Quit, readPop3, readPop3Lines } from './protocols.js';

export async function probePop3(e: Endpoint, ctx: ProbeContext): Promise<ProbeResult<MailboxFacts>> {
  const target = endpointLabel(e);
  const implicit = e.service.tls === 'implicit';
  const findings: Finding[] = [];
  const opened = await openProbe(e, ctx);
  if (opened.unreachable) return opened.unreachable;
  const d = opened.dialogue;
  let greeting: string | undefined;
  let caps: string[] | undefined;
  try {
    const g = await readPop3(d);
    greeting = g.line;
    if (!g.ok) {
      findings.push({
        code: 'POP3_GREETING_REFUSED', area: 'reachability', severity: 'warning', target, evidence: cleanEvidence(g.line),
        title: 'The POP3 server refuses the session at the greeting', fix: 'Check why this client is refused.',
      });
      d.close();
      return { facts: { reachable: true, greeting, tls: false }, findings };
    }
    const capa = await pop3Command(d, 'CAPA');
    caps = capa.ok ? (await readPop3Lines(d)).map((l) => l.trim().toUpperCase()) : [];
    const capsEvidence = [greeting, 'C: CAPA', capa.line, ...(capa.ok ? [...caps, '.'] : [])].join('\n');
    const stls = caps.includes('STLS');
    if (!implicit) {
      findings.push(stls
        ? { code: 'POP3_STLS', area: 'encryption', severity: 'ok', target, evidence: cleanEvidence(capsEvidence), title: 'STLS is offered' }
        : {
          code: 'POP3_NO_STLS', area: 'encryption', severity: 'warning', target, evidence: cleanEvidence(capsEvidence),
          title: 'POP3 on this port offers no STLS', fix: 'Enable STLS on port 110, or close it and let users connect to 995 (implicit TLS).',
        });
      findings.push(await cleartextLogin(d, target, capsEvidence));
    }
    await pop3Quit(d);
    return { facts: { reachable: true, greeting, capabilities: caps, tls: implicit || stls }, findings };
  } catch (err) {
    findings.push(failureFinding(e, err, d.transcript));
    d.close();
    return { facts: { reachable: greeting !== undefined, greeting, capabilities: caps, tls: implicit || !!caps?.includes('STLS') }, findings };
  }
}

async function cleartextLogin(d: Dialogue, target: string, capsEvidence: string): Promise<Finding> {
  const probe = probeCredentials();
  const lines = [capsEvidence];
  const user = await pop3Command(d, `USER ${probe.user}`);
  lines.push(`C: USER ${probe.user}  (made-up credentials)`, user.line);
  let answer = user;
  if (user.ok) {
    answer = await pop3Command(d, `PASS ${probe.password}`);
    lines.push(`C: PASS ${probe.password}`, answer.line);
  }
  const evidence = cleanEvidence(lines.join('\n'));
  if (answer.ok) {
    return {
      code: 'POP3_ACCEPTS_ANY_LOGIN', area: 'encryption', severity: 'critical', target, evidence,
      title: 'POP3 accepted a made-up login in clear text', fix: 'Check the authentication backend at once: it accepts credentials that belong to nobody.',
    };
  }
  // USER refused as a command (not implemented, disabled) is as safe as a refusal naming TLS.
  const userUnsupported = !user.ok && /command|not (supported|implemented|available|allowed)|disabled/i.test(user.line);
  if (PRIVACY_REFUSAL.test(answer.line) || userUnsupported) {
    return { code: 'POP3_NO_PLAINTEXT_LOGIN', area: 'encryption', severity: 'ok', target, evidence, title: 'USER/PASS refused before STLS' };
  }
  return {
    code: 'POP3_PLAINTEXT_LOGIN', area: 'encryption', severity: 'critical', target, evidence,
    title: 'POP3 checks passwords sent in clear text (USER/PASS before STLS)',
    fix: 'Refuse USER/PASS without TLS (Dovecot: disable_plaintext_auth = yes, or ssl = required).',
  };
}
