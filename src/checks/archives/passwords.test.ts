import { test } from 'node:test';
import assert from 'node:assert/strict';
import { htmlToText, passwordCandidates } from './passwords.js';

const first = (text: string) => passwordCandidates([text])[0];

test('"password: X" and its cousins, in several languages: the value comes first', () => {
  const cases: [string, string][] = [
    ['Please find the invoice attached.\nPassword: 1234\nRegards', '1234'],
    ['The password is Inv-2024!', 'Inv-2024!'],
    ['pwd - abc123', 'abc123'],
    ['PASS: q1w2e3', 'q1w2e3'],
    ['Archive password = zx81', 'zx81'],
    ['Password for the archive: 7788', '7788'],
    ['Passwort: Geheim99', 'Geheim99'],
    ['Das Kennwort ist: sonne', 'sonne'],
    ['Le mot de passe : soleil42', 'soleil42'],
    ['mdp: azerty', 'azerty'],
    ['La contraseña es: clave123', 'clave123'],
    ['Senha: 4455', '4455'],
    ['Пароль: 9911', '9911'],
    ['密码：8866', '8866'],
    ['the zip password is "open sesame"', 'open sesame'],
    ['Password: «Zz-12»', 'Zz-12'],
  ];
  for (const [text, want] of cases) assert.equal(first(text), want, text);
});

test('the token right after the word, without separator; a value that starts like a word is kept whole', () => {
  assert.deepEqual(passwordCandidates(['To open it use the password pw-77.']).slice(0, 2), ['pw-77.', 'pw-77']);
  assert.equal(first('Password 8812 for the attachment'), '8812');
  assert.equal(first('pass-through mode is on\npassword: x1'), 'x1');
});

test('trailing punctuation: the bare token is tried too', () => {
  const c = passwordCandidates(['Your password: 4711.']);
  assert.deepEqual(c.slice(0, 2), ['4711.', '4711']);
});

test('the word at the end of a line: the next line carries the password', () => {
  const c = passwordCandidates(['Here is the document.\nPassword:\n\n   x7Yq9   \nThanks']);
  assert.ok(c.includes('x7Yq9'), c.join(','));
});

test('a short token alone on its line counts, after the explicit ones', () => {
  const c = passwordCandidates(['Invoice attached, open with\n\nK9fj2\n\nRegards, Bob']);
  assert.ok(c.includes('K9fj2'), c.join(','));
  const d = passwordCandidates(['pw: first\n\nK9fj2\n']);
  assert.equal(d[0], 'first');
});

test('quoted tokens near a password word', () => {
  const c = passwordCandidates(['To open it use the following password, it is \'s3cr3t\' without quotes']);
  assert.ok(c.includes('s3cr3t'), c.join(','));
});

test('HTML parts: tags dropped, entities decoded, blocks become lines', () => {
  const html = '<html><head><style>p{}</style></head><body><p>Hello,</p><p>Password: <b>77&amp;88</b></p><div>Regards</div><script>var pw="nope"</script></body></html>';
  const text = htmlToText(html);
  assert.match(text, /Password: 77&88/);
  assert.doesNotMatch(text, /nope/);
  assert.equal(first(text), '77&88');
  assert.equal(htmlToText('a&#x41;&#66;&nbsp;c'), 'aAB c');
});

test('bounded: at most `limit` candidates, no duplicates, no URLs', () => {
  const text = Array.from({ length: 200 }, (_, i) => `password: p${i}`).join('\n');
  const c = passwordCandidates([text, text]);
  assert.equal(c.length, 20);
  assert.equal(new Set(c).size, 20);
  assert.equal(passwordCandidates([text], { limit: 5 }).length, 5);
  const url = passwordCandidates(['Password: https://evil.example/reset']);
  assert.ok(!url.some((x) => x.startsWith('https:')), url.join(','));
});

test('no password words, no lone tokens: nothing', () => {
  assert.deepEqual(passwordCandidates(['Dear team, please pass the report to accounting when you have time. Thanks.']), []);
  assert.deepEqual(passwordCandidates(['']), []);
});
