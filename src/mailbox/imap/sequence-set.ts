// Sequence sets (RFC 3501 9: "1:4,7,9:*"). Kept as ranges and matched against the messages
// of the view, so "1:4294967295" costs nothing however large it is.
import { SyntaxError } from './tokens.js';

export const MAX_RANGES = 10_000;

export interface SequenceSet {
  readonly ranges: readonly (readonly [number, number])[];
  /** The set was "$" (RFC 5182 search result) — not offered, refused. */
}

/** Parses a sequence set; `*` is the largest number in use (`star`). */
export function parseSequenceSet(text: string, star: number): SequenceSet {
  if (!/^[0-9:*,]+$/.test(text)) throw new SyntaxError(`Invalid sequence set "${text.slice(0, 40)}"`);
  const items = text.split(',');
  if (items.length > MAX_RANGES) throw new SyntaxError(`More than ${MAX_RANGES} ranges in a sequence set`);
  const ranges: [number, number][] = [];
  const num = (s: string): number => {
    if (s === '*') return star;
    if (!/^[1-9][0-9]{0,9}$/.test(s)) throw new SyntaxError(`Invalid number "${s.slice(0, 20)}" in a sequence set`);
    const n = Number(s);
    if (n > 0xffffffff) throw new SyntaxError('Number out of range in a sequence set');
    return n;
  };
  for (const item of items) {
    const parts = item.split(':');
    if (parts.length > 2 || parts.some((p) => p === '')) throw new SyntaxError(`Invalid range "${item.slice(0, 40)}"`);
    const a = num(parts[0]!);
    const b = parts.length === 2 ? num(parts[1]!) : a;
    ranges.push(a <= b ? [a, b] : [b, a]);
  }
  return { ranges };
}

export function inSet(set: SequenceSet, n: number): boolean {
  for (const [a, b] of set.ranges) if (n >= a && n <= b) return true;
  return false;
}

/** Compact form of ascending numbers: [1,2,3,7] → "1:3,7" (COPYUID, SEARCH results). */
export function formatSet(nums: readonly number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const start = sorted[i]!;
    let end = start;
    while (i + 1 < sorted.length && sorted[i + 1] === end + 1) end = sorted[++i]!;
    out.push(start === end ? String(start) : `${start}:${end}`);
  }
  return out.join(',');
}
