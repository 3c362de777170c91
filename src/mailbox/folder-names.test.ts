import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { decodeMailboxName, encodeMailboxName, folderDir, nameOfDirEntry, newMailboxName, normalizeMailboxName } from './folder-names.js';

test('modified UTF-7: RFC 3501 5.1.3 example and round trips', () => {
  assert.equal(encodeMailboxName('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMailboxName('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語');
  for (const s of ['Entwürfe', 'a&b', '&', 'Ünïcödé ✓ 😀', 'plain']) assert.equal(decodeMailboxName(encodeMailboxName(s)), s);
  assert.equal(encodeMailboxName('a&b'), 'a&-b');
  // Not canonical or broken: refused.
  for (const bad of ['&AGE-', '&U,BTFw', '&Z-', '&ZeVnLIqe', 'caf\u00e9']) assert.equal(decodeMailboxName(bad), undefined, bad);
});

test('names: INBOX is case-insensitive, traversal and odd names are refused', () => {
  assert.equal(normalizeMailboxName('inbox'), 'INBOX');
  assert.equal(normalizeMailboxName('InBox.Sub'), 'INBOX.Sub');
  assert.equal(normalizeMailboxName('Archive.2024'), 'Archive.2024');
  for (const bad of ['', '..', '.', '.hidden', 'a.', 'a..b', '../x', 'INBOX/../x', 'a/b', 'a\\b', 'a\u0000b', 'x\r\ny', '~root', 'a.~b',
    'x'.repeat(201), Array(17).fill('a').join('.'), 'caf\u00e9']) {
    assert.throws(() => normalizeMailboxName(bad), /./, JSON.stringify(bad));
  }
  assert.throws(() => newMailboxName('a*'));
  assert.throws(() => newMailboxName('a%b'));
});

test('folder directories stay inside the Maildir', () => {
  const root = '/data/mail/example.org/alice';
  assert.equal(folderDir(root, 'INBOX'), root);
  assert.equal(folderDir(root, 'Junk'), path.join(root, '.Junk'));
  assert.equal(folderDir(root, 'a.b'), path.join(root, '.a.b'));
  assert.equal(nameOfDirEntry('.Sent'), 'Sent');
  assert.equal(nameOfDirEntry('..portcullis-deleted-x'), undefined);
  assert.equal(nameOfDirEntry('cur'), undefined);
});
