// The SPF record grammar of RFC 7208 s4.5, s4.6.1, s5, s6 and s12 (ABNF), checked in full.
// mailauth evaluates records leniently (it stops at the first matching mechanism and never
// looks at the rest, accepts "exp=" twice, "ip6" without an address, c/r/t macros outside
// explanations); RFC 7208 s4.6 requires a syntax error anywhere in the record to yield
// "permerror" before any evaluation. The gateway therefore checks every SPF record mailauth
// fetches against this grammar first (spf-resolver.ts), and the explanation code and the
// explainer use the parsed terms.
import net from 'node:net';

export type Qualifier = '+' | '-' | '~' | '?';
export type MechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

export interface Mechanism {
  readonly kind: 'mechanism';
  readonly qualifier: Qualifier;
  readonly name: MechanismName;
  /** The domain-spec (include, exists, optionally a, mx, ptr), unexpanded. */
  readonly domainSpec?: string;
  /** ip4/ip6: the network address. */
  readonly network?: string;
  readonly cidr4?: number;
  readonly cidr6?: number;
  /** The term as written. */
  readonly text: string;
}

export interface Modifier {
  readonly kind: 'modifier';
  /** Lower case. */
  readonly name: string;
  readonly value: string;
  readonly text: string;
}

export type Term = Mechanism | Modifier;

export interface ParsedRecord {
  readonly terms: readonly Term[];
  readonly mechanisms: readonly Mechanism[];
  readonly redirect?: string;
  readonly exp?: string;
}

export type ParseResult = { ok: true; record: ParsedRecord } | { ok: false; error: string };

/** RFC 7208 s4.5: a record starts with "v=spf1" followed by a space or its end (case-insensitive). */
export function isSpfRecord(text: string): boolean {
  return /^v=spf1(?: |$)/i.test(text);
}

const MODIFIER = /^([a-z][a-z0-9._-]*)=(.*)$/is;
const MECHANISM = /^([+\-~?]?)([a-z0-9]+)(.*)$/is;
const MACRO_EXPAND = /^%(?:\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}|%|_|-)/i;
const DOMAIN_LETTERS = 'slodiphv';
const EXP_LETTERS = 'slodiphvcrt';
const TOPLABEL = /^(?:[a-z0-9]*[a-z][a-z0-9]*|[a-z0-9]+-[a-z0-9-]*[a-z0-9])$/i;
const QNUM = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const IP4_NETWORK = new RegExp(`^${QNUM}\\.${QNUM}\\.${QNUM}\\.${QNUM}$`);
const CIDR4 = /^(0|[1-9][0-9]?)$/;
const CIDR6 = /^(0|[1-9][0-9]{0,2})$/;

class RecordSyntaxError extends Error {}
const fail = (msg: string): never => {
  throw new RecordSyntaxError(msg);
};

/**
 * Checks a macro-string (RFC 7208 s7.1): every "%" starts a valid macro-expand, literals are
 * visible ASCII. `letters` is the set of macro letters allowed here. Returns the length of the
 * last macro-expand if the string ends in one (for domain-end), else 0.
 */
export function checkMacroString(s: string, letters: string = EXP_LETTERS, allowSpace = false): number {
  let endsInMacro = 0;
  for (let i = 0; i < s.length;) {
    const c = s.charCodeAt(i);
    if (s[i] === '%') {
      const m = MACRO_EXPAND.exec(s.slice(i));
      if (!m) fail(`invalid macro at "${s.slice(i, i + 12)}"`);
      if (m![1] && !letters.includes(m![1].toLowerCase())) fail(`macro letter "${m![1]}" is not allowed here`);
      i += m![0].length;
      endsInMacro = m![0].length;
      continue;
    }
    if (!(c >= 0x21 && c <= 0x7e) && !(allowSpace && c === 0x20)) fail(`invalid character 0x${c.toString(16).padStart(2, '0')}`);
    endsInMacro = 0;
    i++;
  }
  return endsInMacro;
}

/** domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand. */
export function checkDomainSpec(spec: string): void {
  if (!spec) fail('empty domain-spec');
  const endsInMacro = checkMacroString(spec, DOMAIN_LETTERS);
  if (endsInMacro) return;
  const m = /\.([^.]*)\.?$/.exec(spec);
  if (!m || !TOPLABEL.test(m[1]!)) fail(`"${spec}" does not end in a macro or a valid top label`);
}

function cidrs(rest: string, dual: boolean, name: string): { body: string; cidr4?: number; cidr6?: number } {
  const m = /(?:\/([0-9]+))?(?:\/\/([0-9]+))?$/.exec(rest)!;
  const body = rest.slice(0, m.index);
  let cidr4: number | undefined;
  let cidr6: number | undefined;
  if (m[1] !== undefined) {
    if (!CIDR4.test(m[1]) || Number(m[1]) > 32) fail(`invalid ip4 CIDR length in ${name}: /${m[1]}`);
    cidr4 = Number(m[1]);
  }
  if (m[2] !== undefined) {
    if (!dual) fail(`dual CIDR length not allowed in ${name}`);
    if (!CIDR6.test(m[2]) || Number(m[2]) > 128) fail(`invalid ip6 CIDR length in ${name}: //${m[2]}`);
    cidr6 = Number(m[2]);
  }
  return { body, cidr4, cidr6 };
}

function parseMechanism(term: string): Mechanism {
  const m = MECHANISM.exec(term);
  if (!m) fail(`unknown term "${term}"`);
  const qualifier = (m![1] || '+') as Qualifier;
  const name = m![2]!.toLowerCase();
  const rest = m![3]!;
  const base = { kind: 'mechanism' as const, qualifier, text: term };
  const arg = (required: boolean): string | undefined => {
    if (rest.startsWith(':')) return rest.slice(1);
    if (required) fail(`${name} needs ":" and a value`);
    return undefined;
  };
  switch (name) {
    case 'all':
      if (rest) fail(`"all" takes no argument: "${term}"`);
      return { ...base, name };
    case 'include':
    case 'exists': {
      const spec = arg(true)!;
      checkDomainSpec(spec);
      return { ...base, name, domainSpec: spec };
    }
    case 'ptr': {
      if (rest && !rest.startsWith(':')) fail(`invalid ptr mechanism "${term}"`);
      const spec = arg(false);
      if (spec !== undefined) checkDomainSpec(spec);
      return { ...base, name, domainSpec: spec };
    }
    case 'a':
    case 'mx': {
      if (rest && !rest.startsWith(':') && !rest.startsWith('/')) fail(`unknown mechanism "${term}"`);
      const { body, cidr4, cidr6 } = cidrs(rest, true, name);
      if (body && !body.startsWith(':')) fail(`invalid ${name} mechanism "${term}"`);
      const spec = body ? body.slice(1) : undefined;
      if (spec !== undefined) checkDomainSpec(spec);
      return { ...base, name, domainSpec: spec, cidr4, cidr6 };
    }
    case 'ip4': {
      const value = arg(true)!;
      const { body, cidr4 } = cidrs(value, false, name);
      if (!IP4_NETWORK.test(body)) fail(`invalid ip4 network "${body}"`);
      return { ...base, name, network: body, cidr4 };
    }
    case 'ip6': {
      const value = arg(true)!;
      const m6 = /^(.*?)(?:\/([0-9]+))?$/.exec(value)!;
      if (!net.isIPv6(m6[1]!)) fail(`invalid ip6 network "${m6[1]}"`);
      if (m6[2] !== undefined && (!CIDR6.test(m6[2]) || Number(m6[2]) > 128)) fail(`invalid ip6 CIDR length /${m6[2]}`);
      return { ...base, name, network: m6[1], cidr6: m6[2] === undefined ? undefined : Number(m6[2]) };
    }
    default:
      return fail(`unknown mechanism "${term}"`);
  }
}

/** Parses a record (the TXT strings already joined). Anything but RFC 7208 syntax is an error. */
export function parseSpfRecord(text: string): ParseResult {
  try {
    if (!isSpfRecord(text)) fail('does not start with "v=spf1"');
    const terms: Term[] = [];
    let redirect: string | undefined;
    let exp: string | undefined;
    for (const raw of text.slice(6).split(' ')) {
      if (!raw) continue;
      const mod = MODIFIER.exec(raw);
      if (mod) {
        const name = mod[1]!.toLowerCase();
        const value = mod[2]!;
        if (name === 'redirect' || name === 'exp') {
          if ((name === 'redirect' ? redirect : exp) !== undefined) fail(`"${name}=" appears twice`);
          checkDomainSpec(value);
          if (name === 'redirect') redirect = value;
          else exp = value;
        } else {
          checkMacroString(value);
        }
        terms.push({ kind: 'modifier', name, value, text: raw });
        continue;
      }
      terms.push(parseMechanism(raw));
    }
    const mechanisms = terms.filter((t): t is Mechanism => t.kind === 'mechanism');
    return { ok: true, record: { terms, mechanisms, redirect, exp } };
  } catch (err) {
    if (err instanceof RecordSyntaxError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Selects the SPF record among the TXT records of a name (joined strings). */
export function selectSpfRecords(txt: readonly (readonly string[])[]): string[] {
  return txt.map((chunks) => chunks.join('')).filter(isSpfRecord);
}
