// Perl regular expressions (as SpamAssassin rules write them) translated to JavaScript RegExp
// source. Written by hand because no maintained library translates Perl syntax to JS with
// Perl's byte semantics; the translation is one pass over the pattern with a stack of groups
// carrying the inline modifiers in force (i, s, m, x, n).
//
// Semantics chosen (targets are "binary" strings: one char per byte, see targets.ts):
// - `.` is `[^\n]` (Perl's `.` matches \r, JS's does not); with /s it is `[\s\S]`.
// - `\s` is Perl's byte-string set [\t\n\v\f\r ] (JS's \s also matches \xa0 and Unicode spaces).
// - `$` without /m matches at the end or before a final newline, as in Perl.
// - Atomic groups and possessive quantifiers become `(?=(X))\N` (a lookahead does not
//   backtrack into itself, which is exactly atomicity); capture numbers are renumbered.
// - Inline modifiers anywhere: i by case-expanding letters of the region when the whole
//   pattern is not uniformly case-insensitive; s, m, x, n are syntax here, so any region works.
// - Refused, with the reason: recursion, conditionals, code blocks, backtracking verbs, \G,
//   branch reset, Unicode properties, \X, capture-rule templates (%{...}).

import { requiredLiterals } from './prefilter.js';

export interface PerlRegexLiteral {
  readonly pattern: string;
  readonly flags: string;
  /** What follows the literal on the line (e.g. "[if-unset: x]"). */
  readonly rest: string;
}

export type Translation =
  | { readonly ok: true; readonly source: string; readonly flags: string; readonly required: readonly string[]; readonly notes: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const BRACKETS: Record<string, string> = { '{': '}', '(': ')', '[': ']', '<': '>' };

/** Splits `/re/flags rest`, `m{re}flags`, `m!re!flags`… Returns a reason string when malformed. */
export function parseRegexLiteral(text: string): PerlRegexLiteral | string {
  let s = text.trimStart();
  let open: string;
  if (s.startsWith('/')) {
    open = '/';
    s = s.slice(1);
  } else if (s.startsWith('m') && s.length > 1 && !/[\w\s]/.test(s[1]!)) {
    open = s[1]!;
    s = s.slice(2);
  } else {
    return `expected a regular expression (/.../ or m{...}), got "${clip(text)}"`;
  }
  const close = BRACKETS[open] ?? open;
  let depth = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (close !== open && c === open) depth++;
    else if (c === close) {
      if (depth === 0) break;
      depth--;
    }
  }
  if (i >= s.length) return `unterminated regular expression (no closing "${close}")`;
  let pattern = s.slice(0, i);
  // Perl removes the backslash of an escaped delimiter that is not itself a regex character.
  if (close === open && !/[\\^$.*+?()[\]{}|]/.test(open)) pattern = pattern.split(`\\${open}`).join(open);
  const after = s.slice(i + 1);
  const m = /^[a-zA-Z]*/.exec(after)!;
  const flags = m[0];
  const bad = flags.replace(/[imsxgoadlupnc]/g, '');
  if (bad) return `unknown regular expression modifier "${bad}"`;
  const rest = after.slice(flags.length);
  if (rest && !/^\s/.test(rest)) return `unexpected text after the regular expression: "${clip(rest)}"`;
  return { pattern, flags, rest: rest.trim() };
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

class Refuse extends Error {}
class RestartWithoutJsI extends Error {}

interface Mods { i: boolean; s: boolean; m: boolean; x: boolean; n: boolean }

interface Group {
  mods: Mods;
  kind: 'plain' | 'atomic';
  atomicId?: number;
  /** Output index where the group started (for quantifiers applied to the whole group). */
  start: number;
}

// Private-use markers for captures and backreferences, resolved to JS numbers at the end.
const OPEN = '\uE000';
const OPEN_END = '\uE001';
const REF = '\uE002';
const REF_END = '\uE003';

// Perl's \s, \h, \v on byte strings.
const SPACE = '\\t\\n\\x0b\\f\\r ';
const HSPACE = '\\t ';
const VSPACE = '\\n\\x0b\\f\\r';

type Range = [number, number];
const POSIX: Record<string, Range[]> = {
  alpha: [[65, 90], [97, 122]],
  digit: [[48, 57]],
  alnum: [[48, 57], [65, 90], [97, 122]],
  upper: [[65, 90]],
  lower: [[97, 122]],
  space: [[9, 13], [32, 32]],
  blank: [[9, 9], [32, 32]],
  punct: [[33, 47], [58, 64], [91, 96], [123, 126]],
  print: [[32, 126]],
  graph: [[33, 126]],
  cntrl: [[0, 31], [127, 127]],
  xdigit: [[48, 57], [65, 70], [97, 102]],
  word: [[48, 57], [65, 90], [95, 95], [97, 122]],
  ascii: [[0, 127]],
};
const SHORTHAND_RANGES: Record<string, Range[]> = {
  s: [[9, 13], [32, 32]], h: [[9, 9], [32, 32]], v: [[10, 13]], d: [[48, 57]], w: POSIX.word!,
};

function complement(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  let next = 0;
  for (const [a, b] of sorted) {
    if (a > next) out.push([next, a - 1]);
    next = Math.max(next, b + 1);
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

function hex(n: number): string {
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

function rangesToClassBody(r: Range[]): string {
  return r.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join('');
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Letters of a range in the other case (ASCII only: Perl's byte-string case folding). */
function caseVariants([a, b]: Range): Range[] {
  const out: Range[] = [];
  const lo = Math.max(a, 97), hi = Math.min(b, 122);
  if (lo <= hi) out.push([lo - 32, hi - 32]);
  const LO = Math.max(a, 65), HI = Math.min(b, 90);
  if (LO <= HI) out.push([LO + 32, HI + 32]);
  return out;
}

const JS_SPECIAL = new Set('\\^$.*+?()[]{}|/'.split(''));

function literal(code: number): string {
  const ch = String.fromCharCode(code);
  if (JS_SPECIAL.has(ch)) return `\\${ch}`;
  if (code < 0x20 || code === 0x7f || code > 0x7e) return hex(code);
  return ch;
}

/**
 * Translates a Perl pattern with its modifiers. `required`: lower-case strings that every match
 * contains (any one of them suffices when there are several alternatives), for a cheap
 * substring prefilter; empty when none could be derived.
 */
export function translatePerlRegex(pattern: string, flags: string): Translation {
  if (/%\{[A-Za-z_]\w*\}/.test(pattern)) return { ok: false, reason: 'uses a capture template %{...} (SpamAssassin captures feature): not supported' };
  // A leading (?i) (or (?is) ...) is the same as the modifier after the pattern.
  const lead = /^\(\?([imsx]+)\)/.exec(pattern);
  if (lead) {
    pattern = pattern.slice(lead[0].length);
    flags += lead[1];
  }
  for (const jsI of [true, false]) {
    try {
      const t = new Translator(pattern, flags, jsI);
      const out = t.run();
      try {
        // eslint-disable-next-line no-new
        new RegExp(out.source, out.flags);
      } catch (e) {
        return { ok: false, reason: `JavaScript rejects the translation: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}` };
      }
      return { ok: true, ...out };
    } catch (e) {
      if (e instanceof RestartWithoutJsI) continue;
      if (e instanceof Refuse) return { ok: false, reason: e.message };
      return { ok: false, reason: `translation failed: ${(e as Error).message}` };
    }
  }
  return { ok: false, reason: 'translation failed' };
}

class Translator {
  private pos = 0;
  private out = '';
  private readonly stack: Group[] = [];
  private mods: Mods;
  private readonly globalI: boolean;
  private readonly globalM: boolean;
  private nextId = 1; // capture ids (original and synthetic share one space)
  private origCount = 0; // Perl's own capture numbering
  private readonly origToId = new Map<number, number>();
  private readonly names = new Set<string>();
  private lastAtom = -1;
  private readonly notes: string[] = [];

  constructor(private readonly src: string, flags: string, private readonly jsI: boolean) {
    this.mods = { i: flags.includes('i'), s: flags.includes('s'), m: flags.includes('m'), x: flags.includes('x'), n: flags.includes('n') };
    this.globalI = this.mods.i && jsI;
    this.globalM = this.mods.m;
  }

  run(): { source: string; flags: string; required: string[]; notes: string[] } {
    this.sequence();
    if (this.pos < this.src.length) throw new Refuse(`unmatched ")" at offset ${this.pos}`);
    const source = this.resolveCaptures(this.out);
    return { source, flags: (this.globalI ? 'i' : '') + (this.globalM ? 'm' : ''), required: requiredLiterals(source), notes: this.notes };
  }

  private resolveCaptures(s: string): string {
    const numberOf = new Map<number, number>();
    let n = 0;
    s = s.replace(/\uE000(\d+)\uE001/g, (_m, id: string) => {
      numberOf.set(Number(id), ++n);
      return '(';
    });
    return s.replace(/\uE002(\d+)\uE003/g, (_m, id: string) => {
      const k = numberOf.get(Number(id));
      if (k === undefined) throw new Refuse('backreference to a group that does not exist');
      return `(?:\\${k})`;
    });
  }

  // ---------------------------------------------------------------- structure
  private sequence(): void {
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === ')') {
        if (this.stack.length === 0) throw new Refuse(`unmatched ")" at offset ${this.pos}`);
        return;
      }
      this.item();
    }
    if (this.stack.length > 0) throw new Refuse('unmatched "(": missing ")"');
  }

  private item(): void {
    const src = this.src;
    const c = src[this.pos]!;
    if (this.mods.x) {
      if (/\s/.test(c)) {
        this.pos++;
        return;
      }
      if (c === '#') {
        const nl = src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? src.length : nl + 1;
        return;
      }
    }
    switch (c) {
      case '(':
        this.group();
        return;
      case '|':
        this.pos++;
        this.out += '|';
        this.lastAtom = -1;
        return;
      case '[':
        this.atomStart();
        this.charClass();
        return;
      case '.':
        this.pos++;
        this.atomStart();
        this.out += this.mods.s ? '[\\s\\S]' : '[^\\n]';
        return;
      case '^':
        this.pos++;
        this.lastAtom = -1;
        this.out += this.mods.m ? (this.globalM ? '^' : '(?<![^\\n])') : this.globalM ? '(?<![\\s\\S])' : '^';
        return;
      case '$':
        this.pos++;
        this.lastAtom = -1;
        this.out += this.mods.m ? (this.globalM ? '$' : '(?=\\n|(?![\\s\\S]))') : this.globalM ? '(?=\\n?(?![\\s\\S]))' : '(?=\\n?$)';
        return;
      case '*': case '+': case '?':
        this.quantifier();
        return;
      case '{':
        if (this.quantifierBraces()) {
          this.quantifier();
          return;
        }
        this.pos++;
        this.literalChar(123);
        return;
      case '\\':
        this.escape();
        return;
      default:
        this.pos++;
        this.literalChar(c.charCodeAt(0));
    }
  }

  private atomStart(): void {
    this.lastAtom = this.out.length;
  }

  private literalChar(code: number): void {
    this.atomStart();
    if (this.mods.i && !this.globalI && isLetter(code)) {
      const lo = String.fromCharCode(code | 0x20), up = String.fromCharCode(code & ~0x20);
      this.out += `[${lo}${up}]`;
    } else {
      if (!this.mods.i && this.globalI && isLetter(code)) throw new RestartWithoutJsI();
      this.out += literal(code);
    }
  }

  /** `{n}`, `{n,}`, `{n,m}`, `{,m}` at pos? */
  private quantifierBraces(): boolean {
    return /^\{(\d+(,\d*)?|,\d+)\}/.test(this.src.slice(this.pos, this.pos + 24));
  }

  private quantifier(): void {
    const src = this.src;
    if (this.lastAtom < 0) throw new Refuse(`quantifier "${src[this.pos]}" follows nothing at offset ${this.pos}`);
    let q: string;
    const c = src[this.pos]!;
    if (c === '{') {
      const m = /^\{(\d*)(,?)(\d*)\}/.exec(src.slice(this.pos))!;
      this.pos += m[0].length;
      const lo = m[1] === '' ? 0 : Number(m[1]);
      if (m[3] !== '' && Number(m[3]) < lo) throw new Refuse(`quantifier {${m[1]},${m[3]}} has its bounds reversed`);
      q = `{${lo}${m[2]}${m[3]}}`;
    } else {
      this.pos++;
      q = c;
    }
    const next = src[this.pos];
    if (next === '?') {
      this.pos++;
      this.out += q + '?';
    } else if (next === '+') {
      this.pos++;
      // Possessive: the quantified atom becomes atomic.
      const atom = this.out.slice(this.lastAtom);
      const id = this.nextId++;
      this.out = `${this.out.slice(0, this.lastAtom)}(?=${OPEN}${id}${OPEN_END}${atom}${q}))${REF}${id}${REF_END}`;
    } else {
      this.out += q;
    }
    this.lastAtom = -1;
  }

  // ---------------------------------------------------------------- groups
  private group(): void {
    const src = this.src;
    const start = this.out.length;
    this.pos++; // (
    let kind: Group['kind'] = 'plain';
    let head: string;
    const newMods: Mods = { ...this.mods };
    let atomicId: number | undefined;
    if (src[this.pos] === '*') throw new Refuse('backtracking control verb (*...) has no JavaScript equivalent');
    if (src[this.pos] === '?') {
      const rest = src.slice(this.pos + 1);
      if (rest.startsWith('#')) {
        const end = src.indexOf(')', this.pos);
        if (end < 0) throw new Refuse('unterminated (?#...) comment');
        this.pos = end + 1;
        return;
      }
      if (rest.startsWith(':')) {
        head = '(?:';
        this.pos += 2;
      } else if (rest.startsWith('=') || rest.startsWith('!')) {
        head = `(?${rest[0]}`;
        this.pos += 2;
      } else if (rest.startsWith('<=') || rest.startsWith('<!')) {
        head = `(?${rest.slice(0, 2)}`;
        this.pos += 3;
      } else if (rest.startsWith('>')) {
        kind = 'atomic';
        atomicId = this.nextId++;
        head = `(?=${OPEN}${atomicId}${OPEN_END}`;
        this.pos += 2;
      } else if (/^(P?<|')[A-Za-z_]\w*[>']/.test(rest)) {
        const m = /^(?:P?<|')([A-Za-z_]\w*)[>']/.exec(rest)!;
        if (this.names.has(m[1]!)) throw new Refuse(`named group "${m[1]}" is defined twice (JavaScript forbids duplicate names)`);
        this.names.add(m[1]!);
        const id = this.capture();
        head = `${OPEN}${id}${OPEN_END}?<${m[1]}>`;
        this.pos += 1 + m[0].length;
      } else if (/^P=[A-Za-z_]/.test(rest)) {
        const m = /^P=([A-Za-z_]\w*)\)/.exec(rest);
        if (!m) throw new Refuse('malformed (?P=name)');
        this.atomStart();
        this.out += `\\k<${m[1]}>`;
        this.pos += 1 + m[0].length;
        return;
      } else if (/^(R|[+-]?\d|&|P>)/.test(rest)) {
        throw new Refuse('recursion or subroutine call (?R), (?1), (?&name) has no JavaScript equivalent');
      } else if (rest.startsWith('(')) {
        throw new Refuse('conditional (?(cond)yes|no) has no JavaScript equivalent');
      } else if (rest.startsWith('{') || rest.startsWith('?{')) {
        throw new Refuse('embedded Perl code (?{...}) cannot be run');
      } else if (rest.startsWith('|')) {
        throw new Refuse('branch reset (?|...) has no JavaScript equivalent');
      } else {
        const m = /^(\^?)([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(rest);
        if (!m) throw new Refuse(`unknown group construct "(?${rest.slice(0, 6)}" at offset ${this.pos - 1}`);
        if (m[1]) Object.assign(newMods, { i: false, s: false, m: false, x: false, n: false });
        this.applyMods(newMods, m[2]!, true);
        this.applyMods(newMods, m[3] ?? '', false);
        this.pos += 1 + m[0].length;
        if (m[4] === ')') {
          // (?flags) alone: applies to the rest of the enclosing group.
          this.mods = newMods;
          return;
        }
        head = '(?:';
      }
    } else if (this.mods.n) {
      head = '(?:';
    } else {
      const id = this.capture();
      head = `${OPEN}${id}${OPEN_END}`;
    }
    this.stack.push({ mods: this.mods, kind, atomicId, start });
    this.mods = newMods;
    this.out += head;
    this.lastAtom = -1;
    this.sequence();
    if (this.src[this.pos] !== ')') throw new Refuse('unmatched "(": missing ")"');
    this.pos++;
    const g = this.stack.pop()!;
    this.mods = g.mods;
    this.out += g.kind === 'atomic' ? `))${REF}${g.atomicId}${REF_END}` : ')';
    this.lastAtom = g.start;
  }

  private capture(): number {
    const id = this.nextId++;
    this.origToId.set(++this.origCount, id);
    return id;
  }

  private applyMods(m: Mods, letters: string, on: boolean): void {
    for (const f of letters) {
      if (f === 'i' || f === 's' || f === 'm' || f === 'x' || f === 'n') {
        if (f === 'i' && this.jsI && on !== this.globalI) throw new RestartWithoutJsI();
        m[f] = on;
      } else if (!'adlupo'.includes(f)) throw new Refuse(`unknown inline modifier "${f}"`);
    }
  }

  // ---------------------------------------------------------------- escapes
  private escape(): void {
    const src = this.src;
    const c = src[this.pos + 1];
    if (c === undefined) throw new Refuse('pattern ends with a lone backslash');
    this.pos += 2;
    switch (c) {
      case 'A': this.lastAtom = -1; this.out += this.globalM ? '(?<![\\s\\S])' : '^'; return;
      case 'z': this.lastAtom = -1; this.out += this.globalM ? '(?![\\s\\S])' : '$'; return;
      case 'Z': this.lastAtom = -1; this.out += this.globalM ? '(?=\\n?(?![\\s\\S]))' : '(?=\\n?$)'; return;
      case 'b': case 'B':
        if (src[this.pos] === '{') throw new Refuse(`\\${c}{...} Unicode boundaries have no JavaScript equivalent`);
        this.lastAtom = -1; this.out += `\\${c}`; return;
      case 'G': throw new Refuse('\\G (end of previous match) has no JavaScript equivalent');
      case 'K':
        // Keep-out only moves the start of $&; whether and how often a rule matches is unchanged.
        this.lastAtom = -1; this.notes.push('\\K dropped (it only changes the reported match start)'); return;
      case 'd': case 'D': case 'w': case 'W':
        this.atomStart(); this.out += `\\${c}`; return;
      case 's': this.atomStart(); this.out += `[${SPACE}]`; return;
      case 'S': this.atomStart(); this.out += `[^${SPACE}]`; return;
      case 'h': this.atomStart(); this.out += `[${HSPACE}]`; return;
      case 'H': this.atomStart(); this.out += `[^${HSPACE}]`; return;
      case 'v': this.atomStart(); this.out += `[${VSPACE}]`; return;
      case 'V': this.atomStart(); this.out += `[^${VSPACE}]`; return;
      case 'R': this.atomStart(); this.out += `(?:\\r\\n|[${VSPACE}])`; return;
      case 'N':
        if (src[this.pos] === '{') throw new Refuse('\\N{...} named characters are not supported');
        this.atomStart(); this.out += '[^\\n]'; return;
      case 'X': throw new Refuse('\\X (extended grapheme cluster) has no JavaScript equivalent');
      case 'C': throw new Refuse('\\C (single byte) is not supported');
      case 'p': case 'P': throw new Refuse(`\\${c}{...} Unicode properties are not supported (targets are byte strings)`);
      case 'Q': {
        const end = src.indexOf('\\E', this.pos);
        const text = end < 0 ? src.slice(this.pos) : src.slice(this.pos, end);
        this.pos = end < 0 ? src.length : end + 2;
        for (const ch of text) this.literalChar(ch.charCodeAt(0));
        return;
      }
      case 'E': return; // stray \E is ignored by Perl
      case 'l': case 'u': case 'L': case 'U': case 'F':
        throw new Refuse(`\\${c} case-changing escape is not supported in patterns`);
      case 'g': case 'k': {
        const m = /^(?:\{(-?\d+|[A-Za-z_]\w*)\}|(-?\d+)|<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')/.exec(src.slice(this.pos));
        if (!m) throw new Refuse(`malformed \\${c} backreference`);
        this.pos += m[0].length;
        const ref = m[1] ?? m[2] ?? m[3] ?? m[4]!;
        this.atomStart();
        if (/^-?\d+$/.test(ref)) {
          const n = Number(ref);
          this.backref(n < 0 ? this.origCount + 1 + n : n);
        } else this.out += `\\k<${ref}>`;
        return;
      }
      default:
    }
    if (c >= '1' && c <= '9') {
      const m = /^\d*/.exec(src.slice(this.pos))!;
      const digits = c + m[0];
      const n = Number(digits);
      // Perl: \10 and up are backreferences only when that many groups exist; else octal.
      if (n <= 9 || n <= this.origCount) {
        this.pos += m[0].length;
        this.atomStart();
        this.backref(n);
        return;
      }
      const oct = /^[0-7]{1,3}/.exec(digits)![0];
      this.pos += oct.length - 1;
      this.literalChar(parseInt(oct, 8) & 0xff);
      return;
    }
    const code = this.escapedCode(c);
    this.literalChar(code);
  }

  private backref(n: number): void {
    const id = this.origToId.get(n);
    // A forward reference (group defined later) is resolved at the end.
    this.out += `${REF}${id ?? this.forwardRef(n)}${REF_END}`;
  }

  private forwardRef(n: number): number {
    // Groups are numbered in order of their "(": precompute by counting capture opens.
    let count = 0;
    const src = this.src;
    for (let i = 0; i < src.length; i++) {
      if (src[i] === '\\') { i++; continue; }
      if (src[i] === '(' && (src[i + 1] !== '?' || /^\?(P?<[A-Za-z_]|')/.test(src.slice(i + 1)))) {
        if (++count === n) throw new Refuse('forward backreference (to a later group) is not supported');
      }
    }
    throw new Refuse(`backreference \\${n} to a group that does not exist`);
  }

  /** The code of an escaped literal (after the backslash): \n, \x41, \x{41}, \012, \cA, \e… */
  private escapedCode(c: string): number {
    const src = this.src;
    switch (c) {
      case 'n': return 10;
      case 't': return 9;
      case 'r': return 13;
      case 'f': return 12;
      case 'e': return 27;
      case 'a': return 7;
      case '0': {
        const m = /^[0-7]{0,2}/.exec(src.slice(this.pos))!;
        this.pos += m[0].length;
        return parseInt(`0${m[0]}`, 8);
      }
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(src.slice(this.pos));
        if (!m) throw new Refuse('malformed \\o{...}');
        this.pos += m[0].length;
        return this.checkCode(parseInt(m[1]!, 8));
      }
      case 'x': {
        const br = /^\{\s*([0-9a-fA-F]*)\s*\}/.exec(src.slice(this.pos));
        if (br) {
          this.pos += br[0].length;
          return this.checkCode(br[1] ? parseInt(br[1], 16) : 0);
        }
        const m = /^[0-9a-fA-F]{0,2}/.exec(src.slice(this.pos))!;
        this.pos += m[0].length;
        return m[0] ? parseInt(m[0], 16) : 0;
      }
      case 'c': {
        const ch = src[this.pos];
        if (!ch) throw new Refuse('\\c at the end of the pattern');
        this.pos++;
        return ch.toUpperCase().charCodeAt(0) ^ 64;
      }
      default:
        // Any other escaped character stands for itself (Perl warns for unknown letters).
        return c.charCodeAt(0);
    }
  }

  private checkCode(n: number): number {
    if (n > 0xffff) throw new Refuse('character code above U+FFFF is not supported');
    return n;
  }

  // ---------------------------------------------------------------- classes
  private charClass(): void {
    const src = this.src;
    this.pos++; // [
    let negate = false;
    if (src[this.pos] === '^') {
      negate = true;
      this.pos++;
    }
    const items: string[] = [];
    const ranges: Range[] = []; // literal ranges, for case variants
    let first = true;
    for (;;) {
      if (this.pos >= src.length) throw new Refuse('unterminated character class "["');
      const c = src[this.pos]!;
      if (c === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      if (c === '[') {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(this.pos));
        if (m) {
          const set = POSIX[m[2]!];
          if (!set) throw new Refuse(`unknown POSIX class [:${m[2]}:]`);
          this.pos += m[0].length;
          let r = set;
          if (this.mods.i && (m[2] === 'upper' || m[2] === 'lower')) r = POSIX.alpha!;
          items.push(rangesToClassBody(m[1] ? complement(r) : r));
          continue;
        }
        if (/^\[[.=]/.test(src.slice(this.pos))) throw new Refuse('POSIX collating elements [. .] and [= =] are not supported');
      }
      let lo: number | undefined;
      if (c === '\\') {
        const e = src[this.pos + 1];
        if (e === undefined) throw new Refuse('unterminated character class "["');
        this.pos += 2;
        const lower = e.toLowerCase();
        if (lower === 'd' || lower === 'w') {
          // JavaScript's \d \w \D \W without the u flag are ASCII, as Perl's on bytes.
          items.push(`\\${e}`);
          continue;
        }
        if (lower === 's' || lower === 'h' || lower === 'v') {
          const r = SHORTHAND_RANGES[lower]!;
          items.push(rangesToClassBody(e === lower ? r : complement(r)));
          continue;
        }
        if (e === 'p' || e === 'P') throw new Refuse(`\\${e}{...} Unicode properties are not supported (targets are byte strings)`);
        if (e === 'N' || e === 'R' || e === 'X') throw new Refuse(`\\${e} is not allowed in a character class`);
        if (e === 'b') lo = 8;
        else if (e >= '1' && e <= '7') {
          const m = /^[0-7]{0,2}/.exec(src.slice(this.pos))!;
          this.pos += m[0].length;
          lo = parseInt(e + m[0], 8);
        } else lo = this.escapedCode(e);
      } else {
        this.pos++;
        lo = c.charCodeAt(0);
      }
      // Range a-z (a "-" before "]" is literal).
      if (src[this.pos] === '-' && src[this.pos + 1] !== ']' && this.pos + 1 < src.length) {
        const save = this.pos;
        this.pos++;
        let hi: number | undefined;
        const d = src[this.pos]!;
        if (d === '\\') {
          const e = src[this.pos + 1]!;
          if (/[dDwWsShHvVpP]/.test(e)) {
            // "a-\d": the dash is literal.
            this.pos = save;
            hi = undefined;
          } else {
            this.pos += 2;
            hi = e === 'b' ? 8 : this.escapedCode(e);
          }
        } else if (d === '[' && /^\[:\^?[a-z]+:\]/.test(src.slice(this.pos))) {
          this.pos = save;
        } else {
          this.pos++;
          hi = d.charCodeAt(0);
        }
        if (hi !== undefined) {
          if (hi < lo) throw new Refuse(`invalid range in character class (${String.fromCharCode(lo)}-${String.fromCharCode(hi)})`);
          ranges.push([lo, hi]);
          continue;
        }
        if (this.pos === save) {
          ranges.push([lo, lo]);
          this.pos++;
          ranges.push([45, 45]);
          continue;
        }
      }
      ranges.push([lo, lo]);
    }
    if (this.mods.i && !this.globalI) {
      for (const r of [...ranges]) ranges.push(...caseVariants(r));
    } else if (!this.mods.i && this.globalI && ranges.some((r) => caseVariants(r).length > 0)) {
      throw new RestartWithoutJsI();
    }
    const body = items.join('') + rangesToClassBody(ranges);
    if (body === '') {
      // Perl has no empty class ("[]" starts a class containing "]"), but a complement can be empty.
      this.out += negate ? '[\\s\\S]' : '[^\\s\\S]';
      return;
    }
    this.out += `[${negate ? '^' : ''}${body}]`;
  }
}
