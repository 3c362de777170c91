// Role addresses on the MX hosts (RFC 5321 s4.5.1: postmaster MUST be accepted; RFC 2142:
// abuse@ for reports of abuse). Each address is tried as RCPT TO after MAIL FROM:<> — the null
// sender bounces and complaints use — and the transaction is reset, never sent.
import type { Dialogue } from './dialogue.js';
import { cleanEvidence, type Finding } from './findings.js';
import { endpointLabel, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding } from './probe-findings.js';
import { smtpQuit } from './protocols.js';
import { openTransactionSession, tryTransaction } from './relay-probe.js';

export const ROLE_ADDRESSES = ['postmaster', 'abuse'] as const;

export async function probeRoles(e: Endpoint, ctx: ProbeContext): Promise<Finding[]> {
  const target = endpointLabel(e);
  let d: Dialogue;
  try {
    d = await openTransactionSession(e, ctx);
  } catch (err) {
    return [failureFinding(e, err)];
  }
  const findings: Finding[] = [];
  try {
    for (const role of ROLE_ADDRESSES) {
      const address = `${role}@${ctx.domain}`;
      let t = await tryTransaction(d, '', address);
      let tried = `MAIL FROM:<> → ${t.mail.lines.join(' / ')}`;
      if (t.mail.code >= 400 && !d.closed) {
        // Some servers refuse the null sender outright; that is a finding, and the role is still tried.
        findings.push({
          code: 'NULL_SENDER_REFUSED', area: 'roles', severity: 'warning', target, evidence: cleanEvidence(tried),
          title: 'The null sender (MAIL FROM:<>) is refused', fix: 'Accept MAIL FROM:<>: bounces and delivery reports use it (RFC 5321 s4.5.5).',
        });
        t = await tryTransaction(d, `postmaster@${ctx.heloName}`, address);
        tried = `MAIL FROM:<postmaster@${ctx.heloName}> → ${t.mail.lines.join(' / ')}`;
      }
      const evidence = cleanEvidence(`${tried}${t.rcpt ? `\nRCPT TO:<${address}> → ${t.rcpt.lines.join(' / ')}` : ''}`);
      const code = t.rcpt?.code ?? t.mail.code;
      if (t.rcpt && code < 300) {
        findings.push({ code: 'ROLE_ACCEPTED', area: 'roles', severity: 'ok', target, evidence, title: `${address} is accepted` });
      } else if (code < 500) {
        findings.push({
          code: 'ROLE_DEFERRED', area: 'roles', severity: 'info', target, evidence,
          title: `${address} is refused for now (temporary)`, fix: 'Rerun later; if it persists, make sure the address is deliverable.',
        });
      } else {
        findings.push({
          code: 'ROLE_REFUSED', area: 'roles', severity: 'warning', target, evidence,
          title: `${address} is refused`,
          fix: role === 'postmaster'
            ? `Create ${address} (an alias to a person who reads it): RFC 5321 requires it.`
            : `Create ${address} (RFC 2142) so that abuse reports reach you instead of a blocklist.`,
        });
      }
      if (d.closed) break;
    }
    await smtpQuit(d);
  } catch (err) {
    findings.push(failureFinding(e, err, d.transcript));
    d.close();
  }
  return findings;
}
