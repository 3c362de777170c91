// Required literals of a translated regex: a set of lower-case strings such that every match
// contains at least one of them. The matcher skips a rule whose strings are all absent from the
// lower-cased target, which is how SpamAssassin's own prefilters (Rule2XSBody, the base-string
// extractor) make hundreds of body rules cheap: most rules never run their regex at all.
//
// Works on the JavaScript source produced by perl-regex.ts (a known, regular subset: escaped
// literals, classes, groups, quantifiers, lookarounds, backrefs as (?:\N)).

interface Info {
  /** The node always matches exactly one of these strings (null: not a small finite set). */
  exact: string[] | null;
  /** Every match contains one of these (null: nothing known). */
  req: string[] | null;
}

const MAX_SET = 24;
const MIN_LEN = 2;

const NONE: Info = { exact: null, req: null };
const EMPTY: Info = { exact: [''], req: null };

function better(a: string[] | null, b: string[] | null): string[] | null {
  if (!a) return b;
  if (!b) return a;
  const score = (s: string[]) => Math.min(...s.map((x) => x.length)) * 4 - s.length;
  return score(b) > score(a) ? b : a;
}

function cross(a: string[], b: string[]): string[] | null {
  if (a.length * b.length > MAX_SET) return null;
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return [...out];
}

function usable(s: string[] | null): string[] | null {
  if (!s || s.length === 0 || s.length > MAX_SET) return null;
  if (s.some((x) => x.length < MIN_LEN)) return null;
  return s;
}

export function requiredLiterals(source: string): string[] {
  const p = new Parser(source);
  const info = p.alternation();
  const best = better(usable(info.req), usable(info.exact));
  return best ? [...new Set(best)] : [];
}

class Parser {
  private pos = 0;
  constructor(private readonly s: string) {}

  alternation(): Info {
    const alts: Info[] = [this.sequence()];
    while (this.s[this.pos] === '|') {
      this.pos++;
      alts.push(this.sequence());
    }
    if (alts.length === 1) return alts[0]!;
    const exact = alts.every((a) => a.exact) ? alts.flatMap((a) => a.exact!) : null;
    const reqs = alts.map((a) => usable(a.req) ?? usable(a.exact));
    const req = reqs.every((r) => r) ? reqs.flatMap((r) => r!) : null;
    return { exact: exact && exact.length <= MAX_SET ? exact : null, req: req && req.length <= MAX_SET ? req : null };
  }

  private sequence(): Info {
    let req: string[] | null = null;
    let run: string[] | null = ['']; // cross product of the current run of exact items
    const endRun = () => {
      if (run) req = better(req, usable(run));
    };
    let allExact = true;
    let whole: string[] | null = [''];
    while (this.pos < this.s.length && this.s[this.pos] !== '|' && this.s[this.pos] !== ')') {
      const item = this.quantified();
      req = better(req, usable(item.req));
      if (item.exact) {
        const next: string[] | null = run ? cross(run, item.exact) : item.exact;
        if (!next) {
          endRun();
          run = item.exact;
        } else run = next;
        whole = whole ? cross(whole, item.exact) : null;
      } else {
        endRun();
        run = [''];
        allExact = false;
        whole = null;
      }
    }
    endRun();
    return { exact: allExact ? whole : null, req };
  }

  private quantified(): Info {
    const atom = this.atom();
    const q = /^(?:[*+?]|\{(\d+)(?:,(\d*))?\})\??/.exec(this.s.slice(this.pos));
    if (!q) return atom;
    this.pos += q[0].length;
    const c = q[0][0];
    const min = c === '*' || c === '?' ? 0 : c === '+' ? 1 : Number(q[1]);
    const exactOnce = c === '{' && q[2] === undefined && min === 1;
    if (min === 0) return NONE;
    if (exactOnce) return atom;
    return { exact: null, req: usable(atom.req) ?? usable(atom.exact) };
  }

  private atom(): Info {
    const s = this.s;
    const c = s[this.pos]!;
    if (c === '(') {
      this.pos++;
      const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_]\w*>)/.exec(s.slice(this.pos));
      const look = !!m && ['?=', '?!', '?<=', '?<!'].includes(m[0]);
      if (m) this.pos += m[0].length;
      const inner = this.alternation();
      this.pos++; // )
      return look ? EMPTY : inner;
    }
    if (c === '[') {
      const start = this.pos;
      this.pos++;
      if (s[this.pos] === '^') this.pos++;
      while (this.pos < s.length && s[this.pos] !== ']') {
        if (s[this.pos] === '\\') this.pos++;
        this.pos++;
      }
      this.pos++;
      const body = s.slice(start, this.pos);
      // A case pair written out for an (?i) region, e.g. [aA]: one letter.
      const pair = /^\[([a-z])([A-Z])\]$/.exec(body);
      if (pair && pair[1]!.toUpperCase() === pair[2]) return { exact: [pair[1]!], req: null };
      return NONE;
    }
    if (c === '^' || c === '$') {
      this.pos++;
      return EMPTY;
    }
    if (c === '.') {
      this.pos++;
      return NONE;
    }
    if (c === '\\') {
      const e = s[this.pos + 1]!;
      if (e === 'x') {
        const code = parseInt(s.slice(this.pos + 2, this.pos + 4), 16);
        this.pos += 4;
        return { exact: [String.fromCharCode(code).toLowerCase()], req: null };
      }
      if (e === 'u') {
        const code = parseInt(s.slice(this.pos + 2, this.pos + 6), 16);
        this.pos += 6;
        return { exact: [String.fromCharCode(code).toLowerCase()], req: null };
      }
      this.pos += 2;
      if (e === 'b' || e === 'B') return EMPTY;
      if (/[dDwWsS]/.test(e) || /[1-9]/.test(e)) return NONE;
      if (e === 'k') {
        const m = /^<[^>]*>/.exec(s.slice(this.pos));
        if (m) this.pos += m[0].length;
        return NONE;
      }
      const lit: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', '0': '\0' };
      return { exact: [(lit[e] ?? e).toLowerCase()], req: null };
    }
    this.pos++;
    return { exact: [c.toLowerCase()], req: null };
  }
}
