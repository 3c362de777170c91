// MTA-STS (RFC 8461) texts, parsed strictly: the `_mta-sts` TXT record (section 3.1) and the
// policy file (section 3.2); and the MX-pattern match of section 4.1. A policy that is not
// exactly what the RFC describes is refused whole ("the entire policy MUST be ignored").

/** The longest max_age the RFC allows (about one year). */
export const MAX_AGE_LIMIT = 31_557_600;

export interface StsPolicy {
  readonly mode: 'enforce' | 'testing' | 'none';
  /** Patterns in lower case without a trailing dot: "mx1.example.org" or "*.example.org". */
  readonly mx: readonly string[];
  /** Seconds. */
  readonly maxAge: number;
  /** The policy's lines as fetched (TLS-RPT's "policy-string"). */
  readonly lines: readonly string[];
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/**
 * The TXT records of `_mta-sts.<domain>`, each already joined from its strings. Records not
 * starting with "v=STSv1" are ignored; anything but exactly one left means "no policy" (3.1).
 */
export function parseStsRecord(records: readonly string[]): Parsed<{ id: string }> {
  const ours = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  if (ours.length === 0) return { ok: false, reason: 'no v=STSv1 record' };
  if (ours.length > 1) return { ok: false, reason: `${ours.length} v=STSv1 records` };
  const fields = keyValues(ours[0]!);
  if (!fields.ok) return fields;
  const id = fields.value.get('id');
  if (id === undefined) return { ok: false, reason: 'the record has no id' };
  if (!/^[A-Za-z0-9]{1,32}$/.test(id)) return { ok: false, reason: `id "${id}" is not 1-32 letters and digits` };
  return { ok: true, value: { id } };
}

function keyValues(record: string): Parsed<Map<string, string>> {
  const out = new Map<string, string>();
  for (const raw of record.split(';')) {
    const field = raw.trim();
    if (field === '') continue;
    const m = /^([A-Za-z0-9_.-]+)=([\x21-\x3a\x3c\x3e-\x7e]+)$/.exec(field);
    if (!m) return { ok: false, reason: `malformed field "${field}"` };
    if (out.has(m[1]!)) return { ok: false, reason: `field ${m[1]} given twice` };
    out.set(m[1]!, m[2]!);
  }
  return { ok: true, value: out };
}

/** The body of https://mta-sts.<domain>/.well-known/mta-sts.txt (section 3.2). */
export function parseStsPolicy(text: string): Parsed<StsPolicy> {
  const lines = text.split(/\r?\n/);
  // One line break at the end is the usual form; keep the lines themselves for reports.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const kept: string[] = [];
  let version: string | undefined;
  let mode: string | undefined;
  let maxAge: string | undefined;
  const mx: string[] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    const m = /^([A-Za-z0-9_.-]{1,32}):[ \t]*([^\r\n]*?)[ \t]*$/.exec(line);
    if (!m) return { ok: false, reason: `malformed line "${clip(line)}"` };
    kept.push(line);
    const key = m[1]!;
    const value = m[2]!;
    const once = (prev: string | undefined): string => {
      if (prev !== undefined) throw new PolicyError(`${key} given twice`);
      return value;
    };
    try {
      switch (key) {
        case 'version': version = once(version); break;
        case 'mode': mode = once(mode); break;
        case 'max_age': maxAge = once(maxAge); break;
        case 'mx': mx.push(value); break;
        default: break; // extensions are accepted and ignored (3.2)
      }
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
  }
  if (version !== 'STSv1') return { ok: false, reason: version === undefined ? 'no version' : `version "${clip(version)}" is not STSv1` };
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') {
    return { ok: false, reason: mode === undefined ? 'no mode' : `mode "${clip(mode)}" is not enforce, testing or none` };
  }
  if (maxAge === undefined) return { ok: false, reason: 'no max_age' };
  if (!/^[0-9]{1,10}$/.test(maxAge) || Number(maxAge) > MAX_AGE_LIMIT) {
    return { ok: false, reason: `max_age "${clip(maxAge)}" is not a number of seconds up to ${MAX_AGE_LIMIT}` };
  }
  if (mode !== 'none' && mx.length === 0) return { ok: false, reason: `mode ${mode} without any mx` };
  const patterns: string[] = [];
  for (const p of mx) {
    const pattern = p.toLowerCase().replace(/\.$/, '');
    if (!isMxPattern(pattern)) return { ok: false, reason: `mx "${clip(p)}" is not a host name or *.name pattern` };
    patterns.push(pattern);
  }
  return { ok: true, value: { mode, mx: patterns, maxAge: Number(maxAge), lines: kept } };
}

class PolicyError extends Error {}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);

function isMxPattern(p: string): boolean {
  return p.startsWith('*.') ? HOST.test(p.slice(2)) : HOST.test(p);
}

/**
 * Section 4.1: a pattern matches the host name exactly, or "*." matches exactly one leftmost
 * label ("*.example.com" matches "mx.example.com", not "a.b.example.com" nor "example.com").
 */
export function mxMatches(patterns: readonly string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (!p.startsWith('*.')) return p === h;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
