// Reading a bounce that reached a VERP address: which member, and whether the failure is hard.
// A DSN (RFC 3464, multipart/report; report-type=delivery-status) says it per recipient
// (Action: failed, Status: 5.x.x); a bounce without a DSN part counts as hard only when it
// reached a member's VERP address and says nothing temporary (4.x.x / "delayed").
import PostalMime from 'postal-mime';

export interface BounceVerdict {
  readonly hard: boolean;
  /** Status code when the DSN gave one (5.1.1). */
  readonly status?: string;
  /** Final-Recipient of the DSN, when given. */
  readonly recipient?: string;
  readonly reason: string;
}

/** Fields of the delivery-status body: per-recipient groups after the per-message one. */
export function deliveryStatusGroups(text: string): Record<string, string>[] {
  return text.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ').split(/\n\s*\n/).map((block) => {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^([A-Za-z-]+)\s*:\s*(.*)$/.exec(line.trim());
      if (m) fields[m[1]!.toLowerCase()] = m[2]!.trim();
    }
    return fields;
  }).filter((f) => Object.keys(f).length > 0);
}

export async function readBounce(raw: Buffer): Promise<BounceVerdict> {
  const text = raw.toString('latin1');
  const ds = /content-type:\s*message\/(?:global-)?delivery-status[^\n]*\n(?:[^\n]+\n)*?\r?\n([\s\S]*?)(?:\r?\n--|$)/i.exec(text);
  if (ds) {
    const groups = deliveryStatusGroups(ds[1]!);
    const rcpt = groups.find((g) => g.action || g.status);
    if (rcpt) {
      const status = /([245])\.\d{1,3}\.\d{1,3}/.exec(rcpt.status ?? '')?.[0];
      const action = (rcpt.action ?? '').toLowerCase();
      const recipient = /;\s*(.+)$/.exec(rcpt['final-recipient'] ?? rcpt['original-recipient'] ?? '')?.[1]?.trim().toLowerCase();
      const hard = action === 'failed' && (!status || status.startsWith('5'));
      return { hard, ...(status ? { status } : {}), ...(recipient ? { recipient } : {}), reason: `DSN: action ${action || '?'}, status ${status ?? '?'}${rcpt['diagnostic-code'] ? `, ${rcpt['diagnostic-code'].slice(0, 200)}` : ''}` };
    }
  }
  // No DSN: an old-style bounce. Read its text for a temporary wording.
  const parsed = await PostalMime.parse(raw);
  const body = (parsed.text ?? '').slice(0, 20_000);
  if (/\b4\.\d{1,3}\.\d{1,3}\b|\bdelayed\b|\bwill (?:retry|try again)\b|\bover quota\b|\bmailbox full\b/i.test(body)) return { hard: false, reason: 'bounce without DSN that reads as temporary' };
  return { hard: true, reason: 'bounce without DSN' };
}
