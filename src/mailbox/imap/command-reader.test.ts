import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandReader, type ReaderEvent } from './command-reader.js';
import { parseCommand } from './tokens.js';

function reader(maxLine = 100, maxLiteral = 1000) {
  const events: ReaderEvent[] = [];
  const r = new CommandReader({ maxLine, maxLiteral, maxLiterals: 4 }, (e) => events.push(e));
  return { r, events };
}

test('lines and literals make one command; "+" only for synchronising literals', () => {
  const { r, events } = reader();
  r.feed(Buffer.from('a1 LOGIN {5}\r\nalice {3+}\r\npw!\r\n'));
  assert.deepEqual(events.map((e) => e.kind), ['continue', 'command']);
  const cmd = events[1]!.kind === 'command' ? events[1].command : undefined;
  const parsed = parseCommand(cmd!);
  assert.equal(parsed.name, 'LOGIN');
  assert.deepEqual(parsed.args.map((t) => (t.kind === 'string' ? t.value.toString() : '')), ['alice', 'pw!']);
});

test('byte-at-a-time input gives the same result; zero-length literal', () => {
  const { r, events } = reader();
  for (const b of Buffer.from('t SEARCH HEADER X {0}\r\n\r\n')) r.feed(Buffer.from([b]));
  const cmd = events.find((e) => e.kind === 'command');
  assert.ok(cmd && cmd.kind === 'command');
  assert.equal(parseCommand(cmd.command).args.length, 3);
});

test('limits: long line, big literal (APPEND vs other), non-synchronising literal discarded', () => {
  const { r, events } = reader(100, 1000);
  r.feed(Buffer.from(`x NOOP ${'a'.repeat(300)}`));
  r.feed(Buffer.from('\r\ny NOOP\r\n'));
  assert.equal(events[0]!.kind, 'error');
  assert.equal(events[1]!.kind, 'command');
  events.length = 0;
  r.feed(Buffer.from('z APPEND INBOX {5000}\r\n'));
  assert.equal(events[0]!.kind === 'error' && events[0].code, 'TOOBIG');
  events.length = 0;
  r.feed(Buffer.from('w LIST "" {500}\r\n'));
  assert.equal(events[0]!.kind === 'error' && events[0].tag, 'w');
  events.length = 0;
  r.feed(Buffer.from(`v APPEND INBOX {2000+}\r\n${'b'.repeat(2000)}\r\nu NOOP\r\n`));
  assert.deepEqual(events.map((e) => e.kind), ['error', 'command']);
});

test('tokenizer: nesting limit, sections kept whole, quoted escapes', () => {
  const mk = (line: string) => parseCommand({ lines: [line], literals: [], size: line.length });
  const f = mk('a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)');
  assert.equal(f.args[1]!.kind === 'list' && f.args[1].items[0]!.kind === 'atom' && f.args[1].items[0].value, 'BODY.PEEK[HEADER.FIELDS (From To)]<0.100>');
  assert.throws(() => mk(`a X ${'('.repeat(40)}${')'.repeat(40)}`));
  assert.throws(() => mk('a X "unterminated'));
  assert.throws(() => mk('a X "bad \\q escape"'));
  const q = mk('a LOGIN "a\\"b" "c\\\\d"');
  assert.deepEqual(q.args.map((t) => (t.kind === 'string' ? t.value.toString() : '')), ['a"b', 'c\\d']);
  assert.equal(mk('a uid fetch 1 FLAGS').name, 'UID FETCH');
});
