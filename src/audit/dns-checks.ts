// The audit's checks of the domain's DNS records besides SPF (spf-audit.ts): DMARC (RFC 7489),
// DKIM keys of the selectors given (RFC 6376, RFC 8301 key sizes), MTA-STS (RFC 8461) and
// TLS-RPT (RFC 8460) records. The checks of each address (reverse DNS, blocklists) are in
// address-checks.ts.
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { Resolver } from '../dns/types.js';
import { nodeStyleResolver } from '../checks/spf/node-style.js';
import { cleanEvidence, type Finding } from './findings.js';

// ---------------------------------------------------------------------------------------------
// DMARC

/** Tag-value list (RFC 7489 s6.4, RFC 6376 s3.2): "v=DMARC1; p=reject" → Map; undefined on a syntax error. */
export function parseTags(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const part of text.split(';')) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    const key = item.slice(0, eq).trim().toLowerCase();
    if (!/^[a-z][a-z0-9_]*$/.test(key) || out.has(key)) return undefined;
    out.set(key, item.slice(eq + 1).trim());
  }
  return out;
}

type OrgDmarcLookup = (domain: string, resolver: unknown) => Promise<false | { rr: string; isOrgRecord: boolean }>;

/** mailauth's DMARC record lookup, which knows the organisational domain (public suffix list). */
const orgDmarc: OrgDmarcLookup = createRequire(import.meta.url)('mailauth/lib/dmarc/get-dmarc-record.js');

export async function checkDmarc(resolver: Resolver, domain: string): Promise<Finding[]> {
  const name = `_dmarc.${domain}`;
  const txt = await resolver.lookup(name, 'TXT');
  if (txt.status === 'error') {
    return [{
      code: 'DMARC_DNS_ERROR', area: 'sender-auth', severity: 'warning', target: domain, evidence: `${name}. TXT: ${txt.reason}`,
      title: 'The DMARC lookup failed', fix: 'Check that the domain\'s name servers answer TXT questions.',
    }];
  }
  const records = txt.status === 'ok' ? txt.records.map((r) => r.join('').trim()).filter((r) => /^v\s*=\s*DMARC1\b/i.test(r)) : [];
  let record = records[0];
  let from = name;
  if (!records.length) {
    // RFC 7489 s6.6.3: the organisational domain's record applies to its subdomains.
    const org = await orgDmarc(domain, nodeStyleResolver(resolver)).catch(() => false as const);
    if (org && org.isOrgRecord) {
      record = org.rr;
      from = `the organisational domain's record (${org.rr})`;
    } else {
      return [{
        code: 'DMARC_MISSING', area: 'sender-auth', severity: 'warning', target: domain, evidence: `${name}. TXT: ${txt.status === 'ok' ? 'no v=DMARC1 record' : txt.status}`,
        title: 'No DMARC record: receivers have no policy for mail that fails SPF and DKIM',
        fix: `Publish "v=DMARC1; p=none; rua=mailto:dmarc@${domain}" at ${name}, read the reports, then move to p=quarantine or p=reject.`,
      }];
    }
  }
  if (records.length > 1) {
    return [{
      code: 'DMARC_MULTIPLE', area: 'sender-auth', severity: 'critical', target: domain, evidence: cleanEvidence(records.join('\n')),
      title: 'Several DMARC records: receivers ignore them all', fix: 'Keep exactly one v=DMARC1 record.',
    }];
  }
  const evidence = cleanEvidence(`${from === name ? `${name}. TXT "${record}"` : `${name}: none; ${from}`}`);
  const tags = parseTags(record!);
  if (!tags || tags.get('v') !== 'DMARC1' || [...tags.keys()][0] !== 'v') {
    return [{
      code: 'DMARC_SYNTAX', area: 'sender-auth', severity: 'critical', target: domain, evidence,
      title: 'The DMARC record is not valid', fix: 'Write it as "v=DMARC1; p=…; rua=mailto:…" (v first, tags separated by ";").',
    }];
  }
  const p = tags.get('p')?.toLowerCase();
  const findings: Finding[] = [];
  if (!p || !['none', 'quarantine', 'reject'].includes(p)) {
    findings.push({
      code: 'DMARC_SYNTAX', area: 'sender-auth', severity: 'critical', target: domain, evidence,
      title: `The DMARC record has ${p ? `an invalid policy "p=${p}"` : 'no policy (p=)'}`, fix: 'Set p=none, p=quarantine or p=reject.',
    });
  } else if (p === 'none') {
    findings.push({
      code: 'DMARC_POLICY_NONE', area: 'sender-auth', severity: 'warning', target: domain, evidence,
      title: 'DMARC policy is "none": forged mail is still delivered', fix: 'Once the aggregate reports show your own mail passing, move to p=quarantine, then p=reject.',
    });
  } else {
    findings.push({ code: 'DMARC_POLICY', area: 'sender-auth', severity: 'ok', target: domain, evidence, title: `DMARC policy is "${p}"` });
  }
  const pct = tags.get('pct');
  if (pct !== undefined && Number(pct) < 100) {
    findings.push({
      code: 'DMARC_PARTIAL', area: 'sender-auth', severity: 'info', target: domain, evidence,
      title: `The DMARC policy applies to ${pct}% of failing mail`, fix: 'Raise pct to 100 once you are confident.',
    });
  }
  const sp = tags.get('sp')?.toLowerCase();
  if (sp === 'none' && p && p !== 'none') {
    findings.push({
      code: 'DMARC_SUBDOMAINS_NONE', area: 'sender-auth', severity: 'info', target: domain, evidence,
      title: 'Subdomains have DMARC policy "none" (sp=none)', fix: 'Remove sp=none unless subdomains send mail that cannot pass yet.',
    });
  }
  if (!tags.get('rua')) {
    findings.push({
      code: 'DMARC_NO_REPORTS', area: 'sender-auth', severity: 'info', target: domain, evidence,
      title: 'No aggregate reports requested (rua=)', fix: `Add rua=mailto:dmarc-reports@${domain} to learn who sends mail as your domain.`,
    });
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------
// DKIM

export async function checkDkim(resolver: Resolver, domain: string, selectors: readonly string[]): Promise<Finding[]> {
  if (!selectors.length) {
    return [{
      code: 'DKIM_NOT_CHECKED', area: 'sender-auth', severity: 'info', target: domain, evidence: 'no selector given',
      title: 'DKIM not checked: selectors cannot be listed from the DNS', fix: 'Run the audit with --dkim-selector NAME for each selector you sign with.',
    }];
  }
  return (await Promise.all(selectors.map((s) => checkDkimSelector(resolver, domain, s)))).flat();
}

async function checkDkimSelector(resolver: Resolver, domain: string, selector: string): Promise<Finding[]> {
  const name = `${selector}._domainkey.${domain}`;
  const target = name;
  const txt = await resolver.lookup(name, 'TXT');
  if (txt.status !== 'ok') {
    return [{
      code: txt.status === 'error' ? 'DKIM_DNS_ERROR' : 'DKIM_KEY_MISSING', area: 'sender-auth', severity: 'warning', target,
      evidence: `${name}. TXT: ${txt.status === 'error' ? txt.reason : txt.status}`,
      title: txt.status === 'error' ? `The DKIM key lookup for selector "${selector}" failed` : `No DKIM key for selector "${selector}"`,
      fix: `Publish the public key of selector "${selector}" at ${name}, or stop signing with it.`,
    }];
  }
  const records = txt.records.map((r) => r.join(''));
  const text = records.find((r) => /(^|;)\s*(v\s*=\s*DKIM1|p\s*=)/i.test(r)) ?? records[0]!;
  const evidence = cleanEvidence(`${name}. TXT "${text}"`);
  const tags = parseTags(text);
  const p = tags?.get('p')?.replace(/\s+/g, '');
  if (!tags || p === undefined || (tags.has('v') && tags.get('v') !== 'DKIM1')) {
    return [{
      code: 'DKIM_KEY_INVALID', area: 'sender-auth', severity: 'critical', target, evidence,
      title: `The DKIM record of selector "${selector}" is not valid`, fix: 'Publish "v=DKIM1; k=rsa; p=<base64 public key>".',
    }];
  }
  if (p === '') {
    return [{
      code: 'DKIM_KEY_REVOKED', area: 'sender-auth', severity: 'warning', target, evidence,
      title: `The DKIM key of selector "${selector}" is revoked (empty p=)`, fix: 'Stop signing with this selector, or publish its key again.',
    }];
  }
  const k = (tags.get('k') ?? 'rsa').toLowerCase();
  const findings: Finding[] = [];
  if (k === 'ed25519') {
    if (Buffer.from(p, 'base64').length !== 32) {
      findings.push({
        code: 'DKIM_KEY_INVALID', area: 'sender-auth', severity: 'critical', target, evidence,
        title: `The Ed25519 key of selector "${selector}" is not 32 bytes`, fix: 'Publish the raw 32-byte public key, base64-encoded (RFC 8463).',
      });
    } else findings.push({ code: 'DKIM_KEY', area: 'sender-auth', severity: 'ok', target, evidence, title: `Selector "${selector}": Ed25519 key` });
  } else if (k === 'rsa') {
    const bits = rsaBits(p);
    if (bits === undefined) {
      findings.push({
        code: 'DKIM_KEY_INVALID', area: 'sender-auth', severity: 'critical', target, evidence,
        title: `The RSA key of selector "${selector}" cannot be read`, fix: 'Publish the base64 SubjectPublicKeyInfo of the key (as openssl rsa -pubout gives it, without the armour).',
      });
    } else if (bits < 1024) {
      findings.push({
        code: 'DKIM_KEY_WEAK', area: 'sender-auth', severity: 'critical', target, evidence,
        title: `The RSA key of selector "${selector}" has ${bits} bits: receivers ignore keys under 1024 (RFC 8301)`, fix: 'Sign with a new 2048-bit key under a new selector.',
      });
    } else if (bits < 2048) {
      findings.push({
        code: 'DKIM_KEY_SHORT', area: 'sender-auth', severity: 'info', target, evidence,
        title: `The RSA key of selector "${selector}" has ${bits} bits (2048 recommended)`, fix: 'Rotate to a 2048-bit key under a new selector.',
      });
    } else findings.push({ code: 'DKIM_KEY', area: 'sender-auth', severity: 'ok', target, evidence, title: `Selector "${selector}": RSA ${bits}-bit key` });
  } else {
    findings.push({
      code: 'DKIM_KEY_INVALID', area: 'sender-auth', severity: 'critical', target, evidence,
      title: `Selector "${selector}" has an unknown key type k=${k}`, fix: 'Use k=rsa or k=ed25519.',
    });
  }
  if (/\by\b/i.test(tags.get('t') ?? '')) {
    findings.push({
      code: 'DKIM_TESTING', area: 'sender-auth', severity: 'info', target, evidence,
      title: `Selector "${selector}" is in testing mode (t=y): receivers may ignore its signatures`, fix: 'Remove t=y once signing works.',
    });
  }
  return findings;
}

function rsaBits(base64: string): number | undefined {
  const der = Buffer.from(base64, 'base64');
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      const key = crypto.createPublicKey({ key: der, format: 'der', type });
      if (key.asymmetricKeyType === 'rsa') return key.asymmetricKeyDetails?.modulusLength;
    } catch {
      // try the next encoding
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// MTA-STS and TLS-RPT (records only: the MTA-STS policy file on https://mta-sts.<domain>/ is
// not fetched, because that host is outside the hosts the audit was told to contact)

export async function checkMtaSts(resolver: Resolver, domain: string): Promise<Finding[]> {
  const name = `_mta-sts.${domain}`;
  const txt = await resolver.lookup(name, 'TXT');
  const records = txt.status === 'ok' ? txt.records.map((r) => r.join('')).filter((r) => /^v=STSv1\b/i.test(r.trim())) : [];
  if (!records.length) {
    return [{
      code: txt.status === 'error' ? 'MTA_STS_DNS_ERROR' : 'MTA_STS_MISSING', area: 'encryption', severity: 'info', target: domain,
      evidence: `${name}. TXT: ${txt.status === 'error' ? txt.reason : txt.status === 'ok' ? 'no v=STSv1 record' : txt.status}`,
      title: 'No MTA-STS record: senders cannot insist on TLS to your MX hosts',
      fix: `Publish "v=STSv1; id=<date>" at ${name} and a policy at https://mta-sts.${domain}/.well-known/mta-sts.txt (RFC 8461).`,
    }];
  }
  const evidence = cleanEvidence(records.map((r) => `${name}. TXT "${r}"`).join('\n'));
  if (records.length > 1) {
    return [{ code: 'MTA_STS_INVALID', area: 'encryption', severity: 'warning', target: domain, evidence, title: 'Several MTA-STS records: senders ignore them', fix: 'Keep exactly one v=STSv1 record.' }];
  }
  const tags = parseTags(records[0]!);
  const id = tags?.get('id');
  if (!tags || !id || !/^[a-z0-9]{1,32}$/i.test(id)) {
    return [{
      code: 'MTA_STS_INVALID', area: 'encryption', severity: 'warning', target: domain, evidence,
      title: 'The MTA-STS record is not valid (id must be 1-32 letters and digits)', fix: 'Write it as "v=STSv1; id=20240101T000000".',
    }];
  }
  return [{ code: 'MTA_STS', area: 'encryption', severity: 'ok', target: domain, evidence, title: 'MTA-STS record present (the policy file was not fetched)' }];
}

export async function checkTlsRpt(resolver: Resolver, domain: string): Promise<Finding[]> {
  const name = `_smtp._tls.${domain}`;
  const txt = await resolver.lookup(name, 'TXT');
  const records = txt.status === 'ok' ? txt.records.map((r) => r.join('')).filter((r) => /^v=TLSRPTv1\b/i.test(r.trim())) : [];
  if (!records.length) {
    return [{
      code: txt.status === 'error' ? 'TLS_RPT_DNS_ERROR' : 'TLS_RPT_MISSING', area: 'encryption', severity: 'info', target: domain,
      evidence: `${name}. TXT: ${txt.status === 'error' ? txt.reason : txt.status === 'ok' ? 'no v=TLSRPTv1 record' : txt.status}`,
      title: 'No TLS-RPT record: you get no reports of TLS failures delivering to you',
      fix: `Publish "v=TLSRPTv1; rua=mailto:tls-reports@${domain}" at ${name} (RFC 8460).`,
    }];
  }
  const evidence = cleanEvidence(records.map((r) => `${name}. TXT "${r}"`).join('\n'));
  const rua = parseTags(records[0]!)?.get('rua');
  if (records.length > 1 || !rua || !rua.split(',').every((u) => /^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/i.test(u.trim()))) {
    return [{
      code: 'TLS_RPT_INVALID', area: 'encryption', severity: 'warning', target: domain, evidence,
      title: 'The TLS-RPT record is not valid', fix: 'Keep one record "v=TLSRPTv1; rua=mailto:…" (mailto: or https: URIs).',
    }];
  }
  return [{ code: 'TLS_RPT', area: 'encryption', severity: 'ok', target: domain, evidence, title: 'TLS-RPT record present' }];
}
