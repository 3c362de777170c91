import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRules, loadRulesText } from './ruleset.js';

const names = (r: ReturnType<typeof loadRulesText>) => r.ruleset.rules.map((x) => x.name).concat(r.ruleset.metas.map((m) => m.name)).sort();

test('every rule directive is read: header forms, body, rawbody, full, uri, meta', () => {
  const r = loadRulesText([
    'header H1 Subject =~ /free/i',
    'header H2 From:addr !~ /\\@example\\.org$/ [if-unset: nobody@example.org]',
    'header H3 exists:X-Mailer',
    'header H4 ALL:raw =~ m{^Received:}m',
    'header H5 ToCc =~ /a/',
    'header H6 MESSAGEID =~ /@/',
    'header H7 EnvelopeFrom =~ /bounce/',
    'header H8 From:name =~ /Bob/',
    'body B1 /cheap/',
    'rawbody R1 /<font/i',
    'full F1 /^X-Spam/m',
    'uri U1 /\\.example$/',
    'meta M1 B1 && (H1 || !H3) && U1 + R1 > 1',
    'meta __SUB B1',
    'meta M2 __SUB',
  ].join('\n'), { file: 't.cf' });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(names(r), ['B1', 'F1', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'H7', 'H8', 'M1', 'M2', 'R1', 'U1', '__SUB']);
  const h2 = r.ruleset.rules.find((x) => x.name === 'H2')!;
  assert.deepEqual(h2.header, { request: 'From', mods: ['addr'], ifUnset: 'nobody@example.org' });
  assert.equal(h2.negate, true);
  assert.equal(r.ruleset.rules.find((x) => x.name === 'H3')!.exists, true);
  assert.equal(r.ruleset.scores.H1, 1, 'default score 1');
  assert.equal(r.ruleset.scores.__SUB, undefined, '__ rules are never scored');
  assert.equal(r.stats.translated, 15);
});

test('score (one value or four sets), describe, tflags nice/multiple/maxhits, T_ defaults', () => {
  const text = [
    'body A /a/', 'score A 1 2 3 4', 'describe A Letter A',
    'body B /b/', 'score B 2.5',
    'body C /c/', 'tflags C nice multiple maxhits=3',
    'body T_D /d/',
    'body Z /z/', 'score Z 0',
  ].join('\n');
  for (const set of [0, 1, 2, 3] as const) assert.equal(loadRulesText(text, { scoreSet: set }).ruleset.scores.A, set + 1);
  const r = loadRulesText(text);
  assert.equal(r.ruleset.descriptions.A, 'Letter A');
  assert.equal(r.ruleset.scores.B, 2.5);
  assert.equal(r.ruleset.scores.C, -1, 'nice defaults to -1');
  const c = r.ruleset.rules.find((x) => x.name === 'C')!;
  assert.equal(c.multiple, true);
  assert.equal(c.maxhits, 3);
  assert.equal(r.ruleset.scores.T_D, 0.01);
  assert.equal(r.ruleset.scores.Z, undefined, 'score 0 disables the rule');
  assert.equal(r.stats.inactive, 1);
});

test('a zero-scored rule still runs when a scored meta needs it', () => {
  const r = loadRulesText('body Z /z/\nscore Z 0\nmeta M Z\nscore M 2');
  assert.deepEqual(r.ruleset.rules.map((x) => x.name), ['Z']);
  assert.equal(r.ruleset.scores.Z, 0);
});

test('conditionals: if/ifplugin/else/endif, version, can(), plugin(); lang and others ignored', () => {
  const r = loadRulesText([
    'ifplugin Mail::SpamAssassin::Plugin::ReplaceTags', 'body RT /rt/', 'endif',
    'ifplugin Mail::SpamAssassin::Plugin::DKIM', 'body DKIM /dkim/', 'else', 'body NODKIM /nodkim/', 'endif',
    'if (version >= 3.004000)', 'body NEW /new/', 'endif',
    'if version < 3.000000', 'body OLD /old/', 'endif',
    'if can(Mail::SpamAssassin::Conf::feature_capture_rules)', 'body CAP /cap/', 'endif',
    'if !plugin(Mail::SpamAssassin::Plugin::DKIM)', 'body NOPLUG /x/', 'endif',
    'if (version >= 3.004000)', 'ifplugin Nope', 'body NESTED /x/', 'endif', 'endif',
    'lang de describe RT Deutsch',
    'require_version 4.000001',
    'whitelist_from *@example.org',
  ].join('\n'));
  assert.deepEqual(r.problems, []);
  assert.deepEqual(names(r), ['NEW', 'NODKIM', 'NOPLUG', 'RT']);
  assert.equal(r.ruleset.descriptions.RT, 'RT', 'lang lines are ignored');
});

test('syntax errors name file and line, and the rest of the file still loads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rules-'));
  try {
    fs.writeFileSync(path.join(dir, '10_a.cf'), [
      'body GOOD1 /ok/',
      'body BAD1 /unterminated',
      'header BAD2 Subject ~= /x/',
      'score GOOD1 one',
      'meta BAD3 GOOD1 &&',
      'frobnicate yes',
      'endif',
      'body BAD4 /a(?{ 1 })/',
      'body GOOD2 /fine/ # a comment with / slashes',
      'if (version >= 3',
      'body INSIDE /x/',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, '20_b.cf'), 'include inc/extra.cf\n');
    fs.mkdirSync(path.join(dir, 'inc'));
    fs.writeFileSync(path.join(dir, 'inc', 'extra.cf'), 'body INCLUDED /inc/\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'body IGNORED /x/\n');
    const r = loadRules([dir]);
    const a = path.join(dir, '10_a.cf');
    const at = (line: number) => r.problems.filter((p) => p.file === a && p.line === line);
    assert.match(at(2)[0]!.reason, /unterminated regular expression/);
    assert.equal(at(2)[0]!.rule, 'BAD1');
    assert.match(at(3)[0]!.reason, /header: expected/);
    assert.match(at(4)[0]!.reason, /score: expected/);
    assert.match(at(5)[0]!.reason, /meta: expression ends too early/);
    assert.match(at(6)[0]!.reason, /unknown directive "frobnicate"/);
    assert.equal(at(6)[0]!.kind, 'note');
    assert.match(at(7)[0]!.reason, /"endif" without "if"/);
    assert.match(at(8)[0]!.reason, /embedded Perl code/);
    assert.equal(at(8)[0]!.kind, 'untranslatable');
    assert.match(at(10)[0]!.reason, /bad "if" condition/);
    assert.deepEqual(names(r), ['GOOD1', 'GOOD2', 'INCLUDED']);
    assert.equal(r.stats.files, 3);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ReplaceTags: tags, pre/post/inter, nested tags; only in listed rules', () => {
  const r = loadRulesText([
    'replace_tag A (?:a|4)',
    'replace_tag AA <A><A>',
    'replace_inter SP [\\s_]?',
    'replace_post P1 {1,2}',
    'body T1 /x<AA>y/',
    'body T2 /<inter SP><A><A>/',
    'body T3 /<post P1><A>b/',
    'body T4 /<A>/',
    'replace_rules T1 T2 T3',
  ].join('\n'));
  assert.deepEqual(r.problems, []);
  const src = (n: string) => r.ruleset.rules.find((x) => x.name === n)!;
  const re = (n: string) => new RegExp(src(n).source, src(n).flags);
  assert.ok(re('T1').test('x4ay'));
  assert.ok(re('T2').test('4_a'));
  assert.ok(re('T3').test('a4b'));
  assert.ok(re('T4').test('<A>'), 'not in replace_rules: the tag stays literal');
});

test('meta cycles are reported and their rules dropped; unknown names count as 0', () => {
  const r = loadRulesText('body B /b/\nmeta M1 M2 && B\nmeta M2 M1\nmeta M3 B || NOSUCH');
  const cycle = r.problems.find((p) => /cycle/.test(p.reason));
  assert.ok(cycle);
  assert.match(cycle.reason, /M1 -> M2 -> M1|M2 -> M1 -> M2/);
  assert.deepEqual(r.ruleset.metas.map((m) => m.name), ['M3']);
});

test('eval: and mimeheader rules are unsupported with a reason; metas using them get a note', () => {
  const r = loadRulesText('header E1 eval:check_rbl("x")\nbody E2 eval:check_stuff()\nmimeheader MH Content-Type =~ /x/\nbody B /b/\nmeta M B && !E1');
  const kinds = r.problems.map((p) => [p.rule, p.kind]);
  assert.deepEqual(kinds, [['E1', 'unsupported'], ['E2', 'unsupported'], ['MH', 'unsupported'], ['M', 'note']]);
  assert.equal(r.stats.unsupported, 3);
});
