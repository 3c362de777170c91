// Password policy for `portcullis user add|passwd`: what a new password must satisfy, with one
// clear reason when it does not. The cracklib checks of old, plus a modern strength estimate:
//
//   1. length: at least `minLength` (default 10) characters, at most MAX_PASSWORD_LENGTH;
//   2. no control characters (NUL, line breaks, escapes);
//   3. not the user's own name: neither the local part (≥ 3 characters) nor a domain label
//      (≥ 4 characters, the TLD excepted) may appear in it, case-insensitively, forwards or reversed;
//   4. not on the shipped list conf/common-passwords.txt, also once trailing (and leading)
//      digits, punctuation and spaces are stripped ("Password123!" is "password");
//   5. a zxcvbn strength score of at least `minScore` (default 3 of 4), with the user's name and
//      domain as extra dictionary words.
//
// The list and the zxcvbn instance are built once, on first use, and then only read.
import fs from 'node:fs';
import path from 'node:path';
import { domainToUnicode, fileURLToPath } from 'node:url';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as enDictionary, translations as enTranslations } from '@zxcvbn-ts/language-en';
import { MAX_PASSWORD_LENGTH } from './password-hash.js';

export type PasswordScore = 0 | 1 | 2 | 3 | 4;

export interface PasswordPolicyOptions {
  /** Minimum length in characters (code points); default 10. */
  readonly minLength?: number;
  /** Minimum zxcvbn score, 0 (anything) to 4 (very hard to guess); default 3. */
  readonly minScore?: PasswordScore;
}

export type PasswordVerdict = { ok: true } | { ok: false; reason: string };

export const DEFAULT_MIN_PASSWORD_LENGTH = 10;
export const DEFAULT_MIN_PASSWORD_SCORE: PasswordScore = 3;

/** The shipped list of common and breached passwords (one per line, "#" comments). */
export const COMMON_PASSWORDS_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)), '../../../conf/common-passwords.txt');

/** Reads a password list: one password per line, compared in lower case; blank lines and lines
 *  starting with "#" are skipped. Throws when the file cannot be read. */
export function loadPasswordList(file: string): Set<string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`password list ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const set = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    set.add(line.toLowerCase());
  }
  return set;
}

/** zxcvbn judges the first this many characters; a longer password is judged by its start. */
const ZXCVBN_MAX_LENGTH = 128;

let commonPasswords: Set<string> | undefined;
let zxcvbn: ZxcvbnFactory | undefined;

function getCommonPasswords(): Set<string> {
  commonPasswords ??= loadPasswordList(COMMON_PASSWORDS_FILE);
  return commonPasswords;
}

function getZxcvbn(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({
    dictionary: { ...commonDictionary, ...enDictionary },
    graphs: adjacencyGraphs,
    translations: enTranslations,
    // Bounds the cost of one check (repeat and sequence matching grow fast with length; a
    // 256-character repeated pattern takes ~2 s). Levenshtein matching stays off for the same
    // reason: it makes a random 16-character password take ~2 s and adds little.
    maxLength: ZXCVBN_MAX_LENGTH,
  });
  return zxcvbn;
}

// Control characters (C0, DEL, C1): they cannot be typed reliably and break line protocols.
const CONTROL_RE = /\p{Cc}/u;
// What people append to (or put before) a common word to satisfy composition rules.
const TRAILING_JUNK_RE = /[\p{N}\p{P}\p{S}\s]+$/u;
const LEADING_JUNK_RE = /^[\p{N}\p{P}\p{S}\s]+/u;

function reverse(s: string): string {
  return [...s].reverse().join('');
}

interface NameParts {
  /** The local part, lower case ("" when there is none). */
  readonly local: string;
  /** Pieces of the local part and the domain labels (TLD excepted), lower case, deduplicated. */
  readonly words: string[];
  /** Everything, for zxcvbn's user-input dictionary. */
  readonly userInputs: string[];
}

function nameParts(address: string): NameParts {
  const addr = address.trim().toLowerCase();
  const at = addr.lastIndexOf('@');
  const local = at >= 0 ? addr.slice(0, at) : addr;
  const domain = at >= 0 ? addr.slice(at + 1) : '';
  const labels = domain.split('.').filter((l) => l !== '');
  const userInputs = new Set<string>([addr, local, ...labels]);
  const words = new Set<string>();
  // Pieces of "jane.doe" / "j_doe+tag": the same 4-character floor as domain labels.
  for (const piece of local.split(/[._+-]/)) if (piece.length >= 4) words.add(piece);
  // The TLD ("com", "org", "museum") is not the user's name; a lone label ("localhost") is.
  const named = labels.length > 1 ? labels.slice(0, -1) : labels;
  for (const label of named) {
    const forms = [label, ...label.split('-')];
    if (label.startsWith('xn--')) {
      const unicode = domainToUnicode(label);
      if (unicode !== '') forms.push(unicode);
    }
    for (const f of forms) {
      if ([...f].length >= 4) {
        words.add(f);
        userInputs.add(f);
      }
    }
  }
  for (const w of words) userInputs.add(w);
  userInputs.delete('');
  return { local, words: [...words], userInputs: [...userInputs] };
}

function refuse(reason: string): PasswordVerdict {
  return { ok: false, reason };
}

/**
 * Whether `password` may be set for the account `address` (local@domain). Pure apart from the
 * first call, which reads conf/common-passwords.txt and builds the zxcvbn estimator (throws
 * when the list cannot be read: a broken installation refuses rather than accepts).
 */
export function evaluatePassword(password: string, address: string, opts: PasswordPolicyOptions = {}): PasswordVerdict {
  const minLength = opts.minLength ?? DEFAULT_MIN_PASSWORD_LENGTH;
  const minScore = opts.minScore ?? DEFAULT_MIN_PASSWORD_SCORE;
  if (!Number.isInteger(minLength) || minLength < 1 || minLength > MAX_PASSWORD_LENGTH) {
    throw new RangeError(`password policy: minLength must be an integer from 1 to ${MAX_PASSWORD_LENGTH}, not ${minLength}`);
  }
  if (!Number.isInteger(minScore) || minScore < 0 || minScore > 4) {
    throw new RangeError(`password policy: minScore must be 0, 1, 2, 3 or 4, not ${minScore}`);
  }

  // 1, 2: length and characters.
  if ([...password].length < minLength) return refuse(`the password must have at least ${minLength} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) return refuse(`the password must have at most ${MAX_PASSWORD_LENGTH} characters`);
  if (CONTROL_RE.test(password)) {
    return refuse('the password may not contain control characters (such as NUL, tab or a line break)');
  }

  // 3: the user's own name, forwards or reversed.
  const lower = password.toLowerCase();
  const parts = nameParts(address);
  // A one- or two-letter local part ("jo@") would forbid most passwords; it is not a secret.
  if (parts.local.length >= 3) {
    if (lower.includes(parts.local)) return refuse('the password may not contain the user name (the part before "@")');
    if (lower.includes(reverse(parts.local))) return refuse('the password may not contain the user name (the part before "@") reversed');
  }
  for (const word of parts.words) {
    if (lower.includes(word)) return refuse(`the password may not contain "${word}", part of the address`);
    if (lower.includes(reverse(word))) return refuse(`the password may not contain "${word}", part of the address, reversed`);
  }

  // 4: the list of common and breached passwords.
  const common = getCommonPasswords();
  if (common.has(lower)) return refuse('the password is on the list of common and breached passwords');
  const stem = lower.replace(TRAILING_JUNK_RE, '').replace(LEADING_JUNK_RE, '');
  if (stem !== '' && stem !== lower && common.has(stem)) {
    return refuse('the password is a common password with digits or punctuation added');
  }

  // 5: strength estimate (of the first ZXCVBN_MAX_LENGTH characters).
  const result = getZxcvbn().check(password, parts.userInputs);
  if (result.score < minScore) {
    const advice = [result.feedback.warning, result.feedback.suggestions[0]].filter((s): s is string => !!s);
    if (advice.length === 0) advice.push('Use a longer passphrase of several uncommon words.');
    return refuse(`the password is too easy to guess (strength ${result.score} of 4): ${advice.join(' ')}`);
  }
  return { ok: true };
}
