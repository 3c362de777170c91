// The SMTP probe (ports 25, 587, 465): banner, EHLO capabilities, STARTTLS, and whether a
// password could be sent in clear text — AUTH advertised before TLS, or accepted when tried.
// The AUTH test sends "AUTH <mechanism>" with no credentials: a 334 answer means the server
// is waiting for a password in clear text; the audit then cancels with "*" (RFC 4954 s4) and
// never sends one. Every session ends with QUIT.
import { ProbeError, type Dialogue } from './dialogue.js';
import { cleanEvidence, type Finding } from './findings.js';
import { endpointLabel, inspectingTls, type Endpoint, type ProbeContext } from './probe-context.js';
import { failureFinding, openProbe, type ProbeResult } from './probe-findings.js';
import {
  bannerHostname, ehlo, hasCapability, readSmtpReply, replyText, smtpAuthMechanisms, smtpCommand, smtpQuit, type SmtpReply,
} from './protocols.js';

export interface SmtpFacts {
  /** The server answered with an SMTP greeting. */
  readonly reachable: boolean;
  readonly banner?: string;
  /** The host name in the banner, for relay forms that name the server. */
  readonly bannerName?: string;
  /** Before TLS (or inside implicit TLS). */
  readonly capabilities?: readonly string[];
  readonly capabilitiesAfterTls?: readonly string[];
  /** TLS can be had: implicit, or STARTTLS offered. */
  readonly tls: boolean;
}

export type { ProbeResult } from './probe-findings.js';

export async function probeSmtp(e: Endpoint, ctx: ProbeContext): Promise<ProbeResult<SmtpFacts>> {
  const target = endpointLabel(e);
  const implicit = e.service.tls === 'implicit';
  const findings: Finding[] = [];
  const opened = await openProbe(e, ctx);
  if (opened.unreachable) return opened.unreachable;
  const d = opened.dialogue;
  let banner: SmtpReply | undefined;
  let capabilities: readonly string[] | undefined;
  let capabilitiesAfterTls: readonly string[] | undefined;
  let starttls = false;
  try {
    banner = await readSmtpReply(d);
    if (banner.code !== 220) {
      findings.push({
        code: 'SMTP_GREETING_REFUSED', area: 'reachability', severity: 'warning', target, evidence: cleanEvidence(replyText(banner)),
        title: 'The server refuses the session at the greeting', fix: 'Check why this client is refused (a blocklist, a connection limit) if other mail servers may be refused too.',
      });
      await smtpQuit(d);
      return { facts: { reachable: true, banner: banner.lines[0], tls: false }, findings };
    }
    const first = await ehlo(d, ctx.heloName);
    capabilities = first.capabilities;
    if (!implicit) {
      starttls = hasCapability(capabilities, 'STARTTLS');
      findings.push(starttlsFinding(e, target, starttls, replyText(first.reply)));
      findings.push(await cleartextAuth(d, e, target, first.reply, capabilities));
      if (starttls && !d.closed) {
        const r = await smtpCommand(d, 'STARTTLS');
        if (r.code === 220) {
          try {
            await d.startTls(inspectingTls(e, ctx));
            capabilitiesAfterTls = (await ehlo(d, ctx.heloName)).capabilities;
          } catch (err) {
            // The TLS probe reports handshake failures in detail; here the session just ends.
            if (!(err instanceof ProbeError) || err.kind !== 'tls') throw err;
          }
        } else {
          findings.push({
            code: 'SMTP_STARTTLS_REFUSED', area: 'encryption', severity: e.service.userFacing ? 'critical' : 'warning', target,
            evidence: cleanEvidence(`C: STARTTLS\n${replyText(r)}`), title: 'STARTTLS is advertised but refused',
            fix: 'Fix the TLS configuration (certificate and key) so that STARTTLS works.',
          });
        }
      }
    }
    const afterTls = implicit ? capabilities : capabilitiesAfterTls;
    if (e.service.name !== 'smtp' && afterTls && !smtpAuthMechanisms(afterTls).length) {
      findings.push({
        code: 'SUBMISSION_NO_AUTH', area: 'encryption', severity: 'info', target, evidence: afterTls.join('\n'),
        title: 'The submission service offers no AUTH, even over TLS',
        fix: 'Enable authentication on the submission ports, or close them if users do not send mail through this host.',
      });
    }
    await smtpQuit(d);
  } catch (err) {
    findings.push(failureFinding(e, err, d.transcript));
    d.close();
  }
  return {
    facts: {
      reachable: banner !== undefined, banner: banner?.lines[0], bannerName: banner ? bannerHostname(banner) : undefined,
      capabilities, capabilitiesAfterTls, tls: implicit || starttls,
    },
    findings,
  };
}

function starttlsFinding(e: Endpoint, target: string, offered: boolean, ehloReply: string): Finding {
  if (offered) {
    return { code: 'SMTP_STARTTLS', area: 'encryption', severity: 'ok', target, evidence: cleanEvidence(ehloReply), title: 'STARTTLS is offered' };
  }
  if (e.service.name === 'smtp') {
    return {
      code: 'SMTP_NO_STARTTLS', area: 'encryption', severity: 'warning', target, evidence: cleanEvidence(ehloReply),
      title: 'STARTTLS is not offered: mail to this server travels in clear text',
      fix: 'Configure a certificate and enable STARTTLS (Postfix: smtpd_tls_security_level = may).',
    };
  }
  return {
    code: 'SUBMISSION_NO_STARTTLS', area: 'encryption', severity: 'critical', target, evidence: cleanEvidence(ehloReply),
    title: 'The submission port offers no STARTTLS: users cannot log in safely',
    fix: 'Enable STARTTLS on port 587 and require it before AUTH (Postfix: smtpd_tls_security_level = encrypt).',
  };
}

/** Tries AUTH before TLS without credentials; cancels a 334 with "*". */
async function cleartextAuth(d: Dialogue, e: Endpoint, target: string, ehloReply: SmtpReply, caps: readonly string[]): Promise<Finding> {
  const mechanisms = smtpAuthMechanisms(caps);
  const advertised = mechanisms.length > 0;
  const mechanism = mechanisms.includes('PLAIN') ? 'PLAIN' : mechanisms.includes('LOGIN') ? 'LOGIN' : mechanisms[0] ?? 'PLAIN';
  const authLines = ehloReply.lines.filter((l) => /^250[ -]AUTH[ =]/i.test(l));
  const r = await smtpCommand(d, `AUTH ${mechanism}`);
  let exchange = `C: AUTH ${mechanism}\n${replyText(r)}`;
  if (r.code === 334) {
    d.send('*');
    const cancel = await readSmtpReply(d).catch(() => undefined);
    exchange += `\nC: *${cancel ? `\n${replyText(cancel)}` : ''}`;
  }
  const evidence = cleanEvidence([...(advertised ? [`EHLO (before TLS):`, ...authLines] : []), exchange].join('\n'));
  if (r.code === 334 || (r.code >= 200 && r.code < 300)) {
    return {
      code: 'SMTP_AUTH_BEFORE_TLS', area: 'encryption', severity: 'critical', target, evidence,
      title: advertised ? 'AUTH is offered and accepted before TLS: passwords can travel in clear text' : 'AUTH is accepted before TLS (though not advertised)',
      fix: e.service.name === 'smtp' && !advertised
        ? 'Refuse AUTH on connections without TLS (Postfix: smtpd_tls_auth_only = yes).'
        : 'Offer and accept AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes; Portcullis does this always).',
    };
  }
  if (advertised) {
    return {
      code: 'SMTP_AUTH_ADVERTISED_BEFORE_TLS', area: 'encryption', severity: 'warning', target, evidence,
      title: 'AUTH is advertised before TLS (refused when tried)',
      fix: 'Advertise AUTH only after STARTTLS, so that clients never offer a password in clear text.',
    };
  }
  return { code: 'SMTP_NO_AUTH_BEFORE_TLS', area: 'encryption', severity: 'ok', target, evidence, title: 'No AUTH before TLS' };
}
