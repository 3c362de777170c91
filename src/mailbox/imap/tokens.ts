// Turns a raw command (lines and literals) into tag, name and argument tokens (RFC 3501 9):
// atoms (with FETCH's "BODY[HEADER.FIELDS (A B)]<0.100>" section syntax kept whole), quoted
// strings, literals and parenthesised lists. Bounded: list nesting and token count are capped,
// so "((((((..." cannot exhaust the stack.
import type { RawCommand } from './command-reader.js';

export type Token =
  | { readonly kind: 'atom'; readonly value: string }
  | { readonly kind: 'string'; readonly value: Buffer; readonly literal: boolean }
  | { readonly kind: 'list'; readonly items: Token[] };

export interface ParsedCommand {
  readonly tag: string;
  /** Upper case; "UID FETCH" etc. keep the UID prefix. */
  readonly name: string;
  readonly args: Token[];
}

export class SyntaxError extends Error {
  override readonly name = 'ImapSyntaxError';
}

export const MAX_NESTING = 16;
export const MAX_TOKENS = 5000;

const ATOM_STOP = new Set([' ', '(', ')', '"', '{']);

/** Tag and command name from the first line (for error replies), or undefined. */
export function parseCommand(raw: RawCommand): ParsedCommand {
  const first = raw.lines[0] ?? '';
  const m = /^([^\x00-\x20(){%*"\\+\x7f-\xff]+) ([A-Za-z]+)(?: ([A-Za-z]+))?(?: |$)/.exec(first);
  if (!m) throw new SyntaxError(first.trim() === '' ? 'Empty command line' : 'Missing tag or command');
  const tag = m[1]!;
  let name = m[2]!.toUpperCase();
  let consumed = tag.length + 1 + m[2]!.length;
  if (name === 'UID' && m[3]) {
    name = `UID ${m[3].toUpperCase()}`;
    consumed += 1 + m[3].length;
  }
  const lines = [...raw.lines];
  lines[0] = first.slice(consumed);
  if (lines[0].startsWith(' ')) lines[0] = lines[0].slice(1);
  else if (lines[0] !== '' || raw.literals.length) {
    if (lines[0] !== '') throw new SyntaxError('Missing space after command');
  }
  return { tag, name, args: tokenize(lines, raw.literals) };
}

function tokenize(lines: string[], literals: Buffer[]): Token[] {
  const root: Token[] = [];
  const stack: Token[][] = [root];
  let count = 0;
  const push = (t: Token) => {
    if (++count > MAX_TOKENS) throw new SyntaxError(`More than ${MAX_TOKENS} arguments`);
    stack[stack.length - 1]!.push(t);
  };
  // After a literal the next token must be preceded by a space, as after any other token.
  let needSpace = false;
  for (let li = 0; li < lines.length; li++) {
    let s = lines[li]!;
    const hasLiteral = li < literals.length;
    if (hasLiteral) {
      const m = /\{(\d+)\+?\}$/.exec(s);
      if (!m) throw new SyntaxError('Literal marker expected');
      s = s.slice(0, m.index);
    }
    let i = 0;
    while (i < s.length) {
      const c = s[i]!;
      if (c === ' ') {
        if (!needSpace) throw new SyntaxError('Unexpected space');
        needSpace = false;
        i++;
        continue;
      }
      if (needSpace && c !== ')') throw new SyntaxError(`Expected a space at "${s.slice(i, i + 10)}"`);
      if (c === '(') {
        if (stack.length > MAX_NESTING) throw new SyntaxError(`Lists nested deeper than ${MAX_NESTING}`);
        const list: Token = { kind: 'list', items: [] };
        push(list);
        stack.push(list.items);
        i++;
        continue;
      }
      if (c === ')') {
        if (stack.length === 1) throw new SyntaxError('Unbalanced ")"');
        stack.pop();
        i++;
        needSpace = true;
        continue;
      }
      if (c === '"') {
        const bytes: number[] = [];
        i++;
        for (;;) {
          if (i >= s.length) throw new SyntaxError('Unterminated quoted string');
          const q = s.charCodeAt(i);
          if (q === 0x22) break;
          if (q === 0x5c) {
            const next = s[i + 1];
            if (next !== '"' && next !== '\\') throw new SyntaxError('Invalid escape in quoted string');
            bytes.push(next.charCodeAt(0));
            i += 2;
            continue;
          }
          if (q === 0 || q === 13 || q === 10) throw new SyntaxError('NUL or line break in quoted string');
          bytes.push(q);
          i++;
        }
        i++;
        push({ kind: 'string', value: Buffer.from(bytes), literal: false });
        needSpace = true;
        continue;
      }
      // Atom, possibly with [section] (spaces and parentheses inside) and <partial>.
      let j = i;
      while (j < s.length) {
        const a = s[j]!;
        if (a === '[') {
          const close = s.indexOf(']', j);
          if (close < 0) throw new SyntaxError('Unterminated "["');
          j = close + 1;
          continue;
        }
        if (ATOM_STOP.has(a) || s.charCodeAt(j) < 0x20 || s.charCodeAt(j) === 0x7f) break;
        j++;
      }
      if (j === i) throw new SyntaxError(`Unexpected character "${c === '{' ? '{' : c}"`);
      push({ kind: 'atom', value: s.slice(i, j) });
      i = j;
      needSpace = true;
    }
    if (hasLiteral) {
      if (needSpace) throw new SyntaxError('Expected a space before the literal');
      push({ kind: 'string', value: literals[li]!, literal: true });
      needSpace = true;
    }
  }
  if (stack.length !== 1) throw new SyntaxError('Unbalanced "("');
  return root;
}

// --- argument helpers ---------------------------------------------------------------------------

/** A string argument (atom, quoted or literal) as UTF-8 text. */
export function asString(t: Token | undefined, what: string): string {
  if (!t || t.kind === 'list') throw new SyntaxError(`${what} expected`);
  // Lines are kept as latin1 (one char per byte): an atom's bytes are UTF-8 text.
  return t.kind === 'atom' ? Buffer.from(t.value, 'latin1').toString('utf8') : t.value.toString('utf8');
}

/** An astring as raw bytes (APPEND's message). */
export function asBytes(t: Token | undefined, what: string): Buffer {
  if (!t || t.kind !== 'string') throw new SyntaxError(`${what} expected as a string or literal`);
  return t.value;
}

export function asAtom(t: Token | undefined, what: string): string {
  if (!t || t.kind !== 'atom') throw new SyntaxError(`${what} expected`);
  return t.value;
}

export function asList(t: Token | undefined, what: string): Token[] {
  if (!t || t.kind !== 'list') throw new SyntaxError(`${what} expected as a parenthesised list`);
  return t.items;
}

export function isNil(t: Token | undefined): boolean {
  return t?.kind === 'atom' && t.value.toUpperCase() === 'NIL';
}
