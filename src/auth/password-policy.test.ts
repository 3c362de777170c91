import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  COMMON_PASSWORDS_FILE, DEFAULT_MIN_PASSWORD_LENGTH, evaluatePassword, loadPasswordList,
} from './password-policy.js';

const ADDR = 'alice@mail.example.com';

/** Asserts refusal with a reason matching `re`. */
function refused(password: string, re: RegExp, address = ADDR, opts?: Parameters<typeof evaluatePassword>[2]): void {
  const v = evaluatePassword(password, address, opts);
  assert.equal(v.ok, false, `${JSON.stringify(password)} should be refused`);
  if (!v.ok) assert.match(v.reason, re, `${JSON.stringify(password)}: ${v.reason}`);
}

function accepted(password: string, address = ADDR, opts?: Parameters<typeof evaluatePassword>[2]): void {
  assert.deepEqual(evaluatePassword(password, address, opts), { ok: true }, JSON.stringify(password));
}

test('length: at least minLength characters (code points), at most 1024', () => {
  assert.equal(DEFAULT_MIN_PASSWORD_LENGTH, 10);
  refused('Zq8#vL2!', /^the password must have at least 10 characters$/);
  // Nine astral characters are nine characters, not eighteen UTF-16 units.
  refused('🐝🦊🐙🦉🐢🦀🐌🦋🐞', /at least 10 characters/);
  refused('violet kettle drum 77', /^the password must have at least 24 characters$/, ADDR, { minLength: 24 });
  refused('x'.repeat(1025), /^the password must have at most 1024 characters$/);
  assert.throws(() => evaluatePassword('whatever you like', ADDR, { minLength: 0 }), RangeError);
  assert.throws(() => evaluatePassword('whatever you like', ADDR, { minScore: 5 as 4 }), RangeError);
});

test('control characters are refused', () => {
  for (const p of ['violet\0kettle drum 77', 'violet kettle\ndrum 77', 'violet\tkettle drum 77', 'violet kettle drum\x7f77', 'violet kettle drum\u009b77']) {
    refused(p, /^the password may not contain control characters/);
  }
});

test('the local part, forwards or reversed, any case', () => {
  refused('MyALICEpassphrase77', /^the password may not contain the user name \(the part before "@"\)$/);
  refused('ecila violet kettle drum', /^the password may not contain the user name \(the part before "@"\) reversed$/);
  // Pieces of a dotted local part (4 characters or more) count too.
  refused('Wilhelmina kettle drum 77', /may not contain "wilhelmina", part of the address/, 'wilhelmina.ross@example.org');
  // A one- or two-letter local part is not enforced: it would forbid too much.
  accepted('jolly violet kettle drummer', 'jo@example.org');
});

test('domain labels of 4 characters or more, forwards or reversed; not the TLD', () => {
  refused('Example-Violet-Kettle-9', /^the password may not contain "example", part of the address$/);
  refused('elpmaxe violet kettle drum', /^the password may not contain "example", part of the address, reversed$/);
  refused('my mail violet kettle drum', /may not contain "mail", part of the address/);
  // Pieces of a hyphenated label.
  refused('northwind violet kettle 42', /may not contain "northwind", part of the address/, 'bob@northwind-traders.example');
  // The TLD is not the user's name.
  accepted('a museum of violet kettle drums', 'bob@example.museum');
});

test('the shipped common-password list, also with digits or punctuation around', () => {
  refused('qwertyuiop', /^the password is on the list of common and breached passwords$/);
  refused('1Q2W3E4R5T6Y', /^the password is on the list of common and breached passwords$/);
  refused('Password123!', /^the password is a common password with digits or punctuation added$/);
  refused('!!Dragon2024', /^the password is a common password with digits or punctuation added$/);
  refused('Summer2024!!', /common password with digits or punctuation added/);
  refused('qwertyuiop12', /common password with digits or punctuation added/);
});

test('zxcvbn strength below minScore, with its warning and a suggestion', () => {
  refused('aaaaaaaaaaaa', /^the password is too easy to guess \(strength 0 of 4\): Repeated characters like "aaa" are easy to guess\. /);
  refused('abcdefghijkl', /^the password is too easy to guess \(strength 0 of 4\): Common character sequences/);
  refused('letmeinplease', /^the password is too easy to guess \(strength 1 of 4\): This is similar to a commonly used password\. Add more words that are less common\.$/);
  refused('qwertyuiopasdf', /^the password is too easy to guess \(strength 1 of 4\): This is similar to a commonly used password\./);
  refused('trustno1trustno1', /^the password is too easy to guess \(strength \d of 4\): Repeated character patterns/);
  // Low-scoring without a zxcvbn warning still gives advice.
  refused('monkeybusiness', /^the password is too easy to guess \(strength 1 of 4\): \S/);
  // minScore moves the bar both ways.
  accepted('monkeybusiness', ADDR, { minScore: 1 });
  accepted('sunshine sunshine');
  refused('sunshine sunshine', /^the password is too easy to guess \(strength 3 of 4\): /, ADDR, { minScore: 4 });
});

test('strong passphrases and random passwords are accepted', () => {
  accepted('correct horse battery staple 42');
  accepted('violet kettle drum forgets Tuesday');
  accepted('xK9#mQ2vLp7!wRt4');
  // A random 16-character password, as a password manager makes.
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%+=?';
  const random = Array.from(crypto.randomBytes(16), (b) => alphabet[b % alphabet.length]).join('');
  accepted(random);
  // Long passwords are fine (zxcvbn judges the first 128 characters).
  accepted(`${'correct horse battery staple '.repeat(30)}`.slice(0, 1024));
});

test('the shipped list: ~10,000 entries, lower case, header skipped', () => {
  const text = fs.readFileSync(COMMON_PASSWORDS_FILE, 'utf8');
  assert.match(text.split('\n')[0], /^# /);
  const list = loadPasswordList(COMMON_PASSWORDS_FILE);
  assert.ok(list.size >= 9_900 && list.size <= 10_000, String(list.size));
  assert.ok(list.has('password') && list.has('123456') && list.has('qwertyuiop'));
  assert.ok([...list].every((p) => !p.startsWith('#') && p === p.toLowerCase() && p.trim() === p));
});

test('loadPasswordList: comments, blank lines, case, CRLF; a missing file is an error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-policy-'));
  try {
    const f = path.join(dir, 'list.txt');
    fs.writeFileSync(f, '# a comment\r\nHunter2Hunter2\r\n\r\n  # indented comment\r\nfoo bar baz\r\n');
    assert.deepEqual([...loadPasswordList(f)], ['hunter2hunter2', 'foo bar baz']);
    assert.throws(() => loadPasswordList(path.join(dir, 'missing.txt')), /password list .*missing\.txt cannot be read/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
