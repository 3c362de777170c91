import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import {
  AccountError, AccountStore, MAX_ALIAS_DEPTH, accountsFile, checkPasswordPolicy, mailboxPath, normalizeAddress,
  type AccountErrorCode, type AccountStoreOptions,
} from './accounts.js';
import { scryptHasher, type PasswordHasher, type ScryptParams } from './password-hash.js';

const FAST: ScryptParams = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };
const PW = 'a long enough password';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-accounts-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
function tmpDir(): string {
  const d = path.join(tmpRoot, String(++counter));
  fs.mkdirSync(d);
  return d;
}

function openStore(options: AccountStoreOptions = {}, file = accountsFile(tmpDir())): AccountStore {
  return AccountStore.open(file, { hashParams: FAST, ...options });
}

function isAccountError(code: AccountErrorCode, text?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AccountError, `expected AccountError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (text) assert.match(err.message, text);
    return true;
  };
}

function storedHash(file: string, address: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT hash FROM users WHERE address = ?').get(address) as { hash: string }).hash;
  } finally {
    db.close();
  }
}

// --- addresses ------------------------------------------------------------------------------

test('addresses are trimmed, lower-cased and their domain converted to ASCII', () => {
  assert.equal(normalizeAddress('  Alice.Smith+Tag@Example.ORG \r\n'), 'alice.smith+tag@example.org');
  assert.equal(normalizeAddress('bob@Bücher.de'), 'bob@xn--bcher-kva.de');
  assert.equal(normalizeAddress('bob@xn--bcher-kva.de'), 'bob@xn--bcher-kva.de');
  assert.equal(normalizeAddress('a_b-c@mail.example'), 'a_b-c@mail.example');
  assert.equal(normalizeAddress('x@localhost'), 'x@localhost');
});

const REFUSED: [string, RegExp][] = [
  ['alice%example.net@example.org', /% ! "/], // percent hack
  ['example.net!alice@example.org', /% ! "/], // bang path
  ['"alice"@example.org', /% ! "/], // quoted local part
  ['"alice@example.net"@example.org', /% ! "/],
  ['alice\\@example.org', /% ! "/],
  ['@relay.example:alice@example.org', /more than one "@"/], // source route
  ['alice@example.net@example.org', /more than one "@"/],
  ['alice', /full address/],
  ['@example.org', /local part .* empty/],
  ['alice@', /domain is empty/],
  ['.alice@example.org', /local part/],
  ['alice.@example.org', /local part/],
  ['al..ice@example.org', /local part/],
  ['al ice@example.org', /local part/],
  ['al(ice)@example.org', /local part/],
  ['alice,bob@example.org', /local part/],
  ['al\'ice@example.org', /local part/],
  ['\u212Aate@example.org', /ASCII/], // KELVIN SIGN lower-cases to "k"
  ['jos\u00e9@example.org', /ASCII/],
  ['a'.repeat(65) + '@example.org', /longer than 64/],
  ['alice@[192.0.2.1]', /address literals/],
  ['alice@192.0.2.1', /IP address/],
  ['alice@0x7f.1', /IP address/],
  ['alice@ex%41mple.org', /% ! "/], // domainToASCII would percent-decode this
  ['alice@example.org/../..', /only contain letters/], // domainToASCII would cut at "/"
  ['alice@example.org.', /host name/],
  ['alice@-example.org', /host name/],
  ['alice@exa_mple.org', /only contain letters/],
  ['alice@a..org', /host name/],
  ['alice@' + 'a'.repeat(64) + '.org', /host name/],
  ['alice@' + ('a'.repeat(60) + '.').repeat(5) + 'org', /253/],
];

test('routing characters, quoting and malformed addresses are refused with a reason', () => {
  for (const [addr, why] of REFUSED) {
    assert.throws(() => normalizeAddress(addr), isAccountError('INVALID_ADDRESS', why), addr);
  }
});

test('an address with routing characters never matches a local account', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    await s.addUser('kate@example.org', PW);
    await s.addAlias('team@example.org', ['alice@example.org']);
    const variants = [
      'alice%example.org@example.org', 'example.org!alice@example.org', '"alice"@example.org',
      '"alice@example.org"', 'alice@example.org@example.org', '@example.org:alice@example.org',
      '\u212Aate@example.org', '"team"@example.org', 'team%example.org@example.org',
      'alice@example.org/', 'alice@ex%61mple.org', 'alice@[127.0.0.1]',
    ];
    for (const v of variants) {
      assert.equal(s.lookup(v), undefined, v);
      assert.equal(s.hasUser(v), false, v);
      assert.equal(s.expand(v, () => true), undefined, v);
      assert.equal(await s.authenticate(v, PW), false, v);
    }
    // ...while the plain address does match (so the loop above is not vacuous).
    assert.deepEqual(s.lookup('alice@example.org'), { kind: 'user' });
    assert.deepEqual(s.lookup('Kate@example.org'), { kind: 'user' });
    assert.equal(await s.authenticate('alice@example.org', PW), true);
    await assert.rejects(s.addUser('bob%x@example.org', PW), isAccountError('INVALID_ADDRESS'));
    await assert.rejects(() => s.addAlias('a!b@example.org', ['alice@example.org']), isAccountError('INVALID_ADDRESS'));
  } finally {
    s.close();
  }
});

// --- users ----------------------------------------------------------------------------------

test('users: add, case-insensitive lookup, IDN domain, list sorted, delete', async () => {
  let t = Date.parse('2024-05-01T10:00:00Z');
  const s = openStore({ now: () => new Date((t += 1000)) });
  try {
    await s.addUser('Zed@Example.org', PW);
    await s.addUser('alice@example.org', PW);
    await s.addUser('carol@bücher.de', PW);
    assert.equal(s.hasUser('ZED@EXAMPLE.ORG'), true);
    assert.equal(s.hasUser(' zed@example.org '), true);
    assert.equal(s.hasUser('carol@BÜCHER.de'), true);
    assert.equal(s.hasUser('carol@xn--bcher-kva.de'), true);
    assert.deepEqual(s.lookup('Alice@EXAMPLE.org'), { kind: 'user' });
    assert.equal(s.lookup('nobody@example.org'), undefined);
    assert.equal(s.hasUser('nobody@example.org'), false);
    assert.deepEqual(s.listUsers(), [
      { address: 'alice@example.org', created: '2024-05-01T10:00:02.000Z' },
      { address: 'carol@xn--bcher-kva.de', created: '2024-05-01T10:00:03.000Z' },
      { address: 'zed@example.org', created: '2024-05-01T10:00:01.000Z' },
    ]);
    await s.deleteUser('ZED@example.org');
    assert.equal(s.hasUser('zed@example.org'), false);
    assert.equal(await s.authenticate('zed@example.org', PW), false);
    assert.deepEqual(s.listUsers().map((u) => u.address), ['alice@example.org', 'carol@xn--bcher-kva.de']);
  } finally {
    s.close();
  }
});

test('users: duplicates and unknown users are AccountErrors', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    await assert.rejects(s.addUser('ALICE@example.org', 'another long password'), isAccountError('DUPLICATE', /alice@example.org is already a user/));
    await assert.rejects(() => s.deleteUser('bob@example.org'), isAccountError('UNKNOWN_USER', /no user bob@example.org/));
    await assert.rejects(s.setPassword('bob@example.org', PW), isAccountError('UNKNOWN_USER'));
    await assert.rejects(() => s.deleteUser('bad%addr@example.org'), isAccountError('INVALID_ADDRESS'));
    assert.equal(s.listUsers().length, 1);
  } finally {
    s.close();
  }
});

test('password policy: length, local part, address', async () => {
  assert.equal(checkPasswordPolicy('vivid-Otter-harbor-91', 'alice@example.org'), undefined);
  assert.match(checkPasswordPolicy('0123456789', 'alice@example.org') ?? '', /too easy to guess/);
  assert.match(checkPasswordPolicy('012345678', 'alice@example.org') ?? '', /at least 10/);
  // Characters, not UTF-16 units: ten emoji are ten characters, nine are not.
  assert.equal(checkPasswordPolicy('😀🍕🚲🌋🎻🦉🧭🪁🌵🛶', 'alice@example.org'), undefined);
  assert.match(checkPasswordPolicy('😀🍕🚲🌋🎻🦉🧭🪁🌵', 'alice@example.org') ?? '', /at least 10/);
  assert.match(checkPasswordPolicy('my-Alice-password', 'alice@example.org') ?? '', /user name/);
  assert.match(checkPasswordPolicy('Alice@Example.org', 'alice@example.org') ?? '', /user name/);
  assert.match(checkPasswordPolicy('abc\0defghijk', 'alice@example.org') ?? '', /NUL/);
  assert.match(checkPasswordPolicy('x'.repeat(2000), 'alice@example.org') ?? '', /at most/);
  // A two-letter local part is not enforced (it would forbid most passwords).
  assert.equal(checkPasswordPolicy('a jolly long password', 'jo@example.org'), undefined);

  const s = openStore();
  try {
    await assert.rejects(s.addUser('alice@example.org', 'short'), isAccountError('WEAK_PASSWORD', /alice@example.org refused: .*at least 10/));
    await assert.rejects(s.addUser('alice@example.org', 'xxaliceyyzz'), isAccountError('WEAK_PASSWORD', /user name/));
    assert.equal(s.hasUser('alice@example.org'), false);
    await s.addUser('alice@example.org', PW);
    await assert.rejects(s.setPassword('alice@example.org', 'alice@example.org'), isAccountError('WEAK_PASSWORD'));
    assert.equal(await s.authenticate('alice@example.org', PW), true);
  } finally {
    s.close();
  }
});

test('authenticate and setPassword', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    assert.equal(await s.authenticate('alice@example.org', PW), true);
    assert.equal(await s.authenticate('ALICE@Example.Org', PW), true);
    assert.equal(await s.authenticate('alice@example.org', PW.toUpperCase()), false);
    assert.equal(await s.authenticate('alice@example.org', ''), false);
    await s.setPassword('Alice@example.org', 'a brand new password');
    assert.equal(await s.authenticate('alice@example.org', PW), false);
    assert.equal(await s.authenticate('alice@example.org', 'a brand new password'), true);
  } finally {
    s.close();
  }
});

/** A scrypt hasher that records which hashes verify() was called with. */
function recordingHasher(params: ScryptParams): { hasher: PasswordHasher; verified: string[] } {
  const inner = scryptHasher(params);
  const verified: string[] = [];
  return {
    verified,
    hasher: { ...inner, verify: (pw, enc) => { verified.push(enc); return inner.verify(pw, enc); } },
  };
}

test('unknown users are verified against the dummy hash (same work as a real user)', async () => {
  const { hasher, verified } = recordingHasher(FAST);
  const s = openStore({ hasher });
  try {
    await s.addUser('alice@example.org', PW);
    assert.equal(await s.authenticate('nobody@example.org', PW), false);
    assert.deepEqual(verified, [hasher.dummy()]);
    assert.equal(await s.authenticate('bad"addr@example.org', PW), false);
    assert.deepEqual(verified, [hasher.dummy(), hasher.dummy()]);
    assert.equal(await s.authenticate('alice@example.org', 'a wrong password'), false);
    assert.equal(verified.length, 3);
    assert.notEqual(verified[2], hasher.dummy());
    assert.match(verified[2], /^\$scrypt\$ln=10,r=8,p=1\$/);
  } finally {
    s.close();
  }
});

test('unknown-user and wrong-password logins take comparable time', async () => {
  const s = openStore({ hashParams: { ...FAST, ln: 14 } });
  const time = async (addr: string) => {
    const t = process.hrtime.bigint();
    assert.equal(await s.authenticate(addr, 'a wrong password'), false);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  try {
    await s.addUser('alice@example.org', PW);
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 7; i++) {
      known.push(await time('alice@example.org'));
      unknown.push(await time('nobody@example.org'));
    }
    // The fastest of several runs: the least disturbed by other load on a shared machine.
    const ratio = Math.min(...unknown) / Math.min(...known);
    assert.ok(ratio > 0.5 && ratio < 2, `unknown/known ratio ${ratio.toFixed(2)} (${unknown} vs ${known})`);
  } finally {
    s.close();
  }
});

test('a successful login re-hashes a password stored with old parameters', async () => {
  const file = accountsFile(tmpDir());
  const old = AccountStore.open(file, { hashParams: FAST });
  await old.addUser('alice@example.org', PW);
  old.close();
  const h0 = storedHash(file, 'alice@example.org');
  assert.match(h0, /^\$scrypt\$ln=10,/);

  const NEW: ScryptParams = { ...FAST, ln: 11 };
  const s = AccountStore.open(file, { hashParams: NEW });
  try {
    assert.equal(await s.authenticate('alice@example.org', 'a wrong password'), false);
    assert.equal(storedHash(file, 'alice@example.org'), h0, 'a failed login must not rehash');
    assert.equal(await s.authenticate('alice@example.org', PW), true);
    const h1 = storedHash(file, 'alice@example.org');
    assert.match(h1, /^\$scrypt\$ln=11,/);
    assert.notEqual(h1, h0);
    assert.equal(await s.authenticate('alice@example.org', PW), true);
    assert.equal(storedHash(file, 'alice@example.org'), h1, 'current parameters: no further rehash');
  } finally {
    s.close();
  }
});

test('a rehash never overwrites a password changed during the login', async () => {
  const file = accountsFile(tmpDir());
  const admin = AccountStore.open(file, { hashParams: FAST });
  await admin.addUser('alice@example.org', PW);
  const inner = scryptHasher(FAST);
  const hasher: PasswordHasher = {
    ...inner,
    needsRehash: () => true,
    verify: async (pw, enc) => {
      const ok = await inner.verify(pw, enc);
      await admin.setPassword('alice@example.org', 'changed by the admin'); // lands between verify and rehash
      return ok;
    },
  };
  const server = AccountStore.open(file, { hasher });
  try {
    assert.equal(await server.authenticate('alice@example.org', PW), true);
    assert.equal(await admin.authenticate('alice@example.org', 'changed by the admin'), true);
    assert.equal(await admin.authenticate('alice@example.org', PW), false);
  } finally {
    server.close();
    admin.close();
  }
});

// --- aliases --------------------------------------------------------------------------------

test('aliases: add, list, lookup, delete, and the errors', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    await s.addAlias('Sales@Example.org', ['ALICE@example.org', 'o\'brien@Partner.example', 'alice@example.org']);
    assert.deepEqual(s.lookup('sales@EXAMPLE.org'), { kind: 'alias', targets: ['alice@example.org', 'o\'brien@partner.example'] });
    assert.deepEqual(s.listAliases(), [{ address: 'sales@example.org', targets: ['alice@example.org', 'o\'brien@partner.example'] }]);

    await assert.rejects(() => s.addAlias('sales@example.org', ['alice@example.org']), isAccountError('DUPLICATE', /already an alias/));
    await assert.rejects(() => s.addAlias('Alice@example.org', ['bob@example.net']), isAccountError('DUPLICATE', /already a user/));
    await assert.rejects(s.addUser('sales@example.org', PW), isAccountError('DUPLICATE', /already an alias/));
    await assert.rejects(() => s.addAlias('self@example.org', ['SELF@example.org']), isAccountError('INVALID_TARGET', /itself/));
    await assert.rejects(() => s.addAlias('empty@example.org', []), isAccountError('INVALID_TARGET', /at least one/));
    for (const bad of ['x%y@example.net', 'y!x@example.net', '"x"@example.net', 'x@[192.0.2.1]', 'nodomain', 'x@y@example.net']) {
      await assert.rejects(() => s.addAlias('list@example.org', [bad]), isAccountError('INVALID_TARGET', /alias target/), bad);
    }
    await assert.rejects(() => s.addAlias('o\'brien@example.org', ['alice@example.org']), isAccountError('INVALID_ADDRESS'));
    assert.equal(s.lookup('list@example.org'), undefined, 'a refused alias is not half-created');

    await s.deleteAlias('SALES@example.org');
    assert.equal(s.lookup('sales@example.org'), undefined);
    await assert.rejects(() => s.deleteAlias('sales@example.org'), isAccountError('UNKNOWN_ALIAS', /no alias sales@example.org/));
    assert.deepEqual(s.listAliases(), []);
  } finally {
    s.close();
  }
});

const LOCAL = (d: string) => d === 'example.org' || d === 'example.com';

test('expand: users, nested aliases, external and unknown targets, deduplicated', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    await s.addUser('bob@example.com', PW);
    await s.addAlias('staff@example.org', ['alice@example.org', 'bob@example.com']);
    await s.addAlias('all@example.org', ['staff@example.org', 'bob@example.com', 'partner@example.net', 'gone@example.org', 'PARTNER@example.net']);
    await s.addAlias('both@example.org', ['staff@example.org', 'all@example.org']);

    assert.deepEqual(s.expand('Alice@Example.org', LOCAL), { users: ['alice@example.org'], external: [], unknown: [] });
    assert.deepEqual(s.expand('ALL@example.org', LOCAL), {
      users: ['alice@example.org', 'bob@example.com'],
      external: ['partner@example.net'],
      unknown: ['gone@example.org'],
    });
    assert.deepEqual(s.expand('both@example.org', LOCAL), {
      users: ['alice@example.org', 'bob@example.com'],
      external: ['partner@example.net'],
      unknown: ['gone@example.org'],
    });
    // Which domains are local is the caller's decision.
    assert.deepEqual(s.expand('all@example.org', () => true)?.unknown, ['partner@example.net', 'gone@example.org']);
    assert.equal(s.expand('nobody@example.org', LOCAL), undefined);

    // A user deleted after the alias was made shows up as unknown.
    await s.deleteUser('bob@example.com');
    assert.deepEqual(s.expand('staff@example.org', LOCAL), { users: ['alice@example.org'], external: [], unknown: ['bob@example.com'] });
  } finally {
    s.close();
  }
});

test('expand: alias loops terminate', async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    await s.addAlias('a@example.org', ['b@example.org', 'alice@example.org']);
    await s.addAlias('b@example.org', ['c@example.org']);
    await s.addAlias('c@example.org', ['a@example.org', 'b@example.org', 'ext@example.net']);
    for (const start of ['a@example.org', 'b@example.org', 'c@example.org']) {
      assert.deepEqual(s.expand(start, LOCAL), { users: ['alice@example.org'], external: ['ext@example.net'], unknown: [] }, start);
    }
    // A loop with no user at all: empty, not undefined (the address exists).
    await s.addAlias('x@example.org', ['y@example.org']);
    await s.addAlias('y@example.org', ['x@example.org']);
    assert.deepEqual(s.expand('x@example.org', LOCAL), { users: [], external: [], unknown: [] });
  } finally {
    s.close();
  }
});

test(`expand: aliases are followed ${MAX_ALIAS_DEPTH} levels deep, no further`, async () => {
  const s = openStore();
  try {
    await s.addUser('alice@example.org', PW);
    // Chain l1 → l2 → … → l12 → alice; each level also names an external address.
    const n = MAX_ALIAS_DEPTH + 2;
    for (let i = n; i >= 1; i--) {
      await s.addAlias(`l${i}@example.org`, [i === n ? 'alice@example.org' : `l${i + 1}@example.org`, `e${i}@example.net`]);
    }
    const r = s.expand('l1@example.org', LOCAL);
    assert.ok(r);
    assert.deepEqual(r.users, []);
    assert.deepEqual([...r.external].sort(), Array.from({ length: MAX_ALIAS_DEPTH }, (_, i) => `e${i + 1}@example.net`).sort());
    assert.deepEqual(r.unknown, [`l${MAX_ALIAS_DEPTH + 1}@example.org`]);
    // Starting two levels lower, the whole chain fits.
    const r3 = s.expand('l3@example.org', LOCAL);
    assert.deepEqual(r3?.users, ['alice@example.org']);
    assert.deepEqual(r3?.unknown, []);
    assert.equal(r3?.external.length, MAX_ALIAS_DEPTH);
  } finally {
    s.close();
  }
});

// --- the file -------------------------------------------------------------------------------

test('two stores on one file (CLI and gateway) see each other\'s changes at once', async () => {
  const file = accountsFile(tmpDir());
  const server = AccountStore.open(file, { hashParams: FAST });
  const cli = AccountStore.open(file, { hashParams: FAST });
  try {
    assert.equal(server.lookup('alice@example.org'), undefined); // statements prepared and used before the change
    await cli.addUser('alice@example.org', PW);
    assert.deepEqual(server.lookup('alice@example.org'), { kind: 'user' });
    assert.equal(await server.authenticate('alice@example.org', PW), true);
    await cli.addAlias('team@example.org', ['alice@example.org']);
    assert.deepEqual(server.expand('team@example.org', LOCAL)?.users, ['alice@example.org']);
    await assert.rejects(server.addUser('team@example.org', PW), isAccountError('DUPLICATE'));
    await cli.setPassword('alice@example.org', 'a second password');
    assert.equal(await server.authenticate('alice@example.org', PW), false);
    assert.equal(await server.authenticate('alice@example.org', 'a second password'), true);
    await server.deleteAlias('team@example.org');
    await cli.deleteUser('alice@example.org');
    assert.equal(server.lookup('alice@example.org'), undefined);
    assert.deepEqual(cli.listAliases(), []);
  } finally {
    cli.close();
    server.close();
  }
});

test('another process (the CLI) can write while the gateway holds the file open', async () => {
  const file = accountsFile(tmpDir());
  const server = AccountStore.open(file, { hashParams: FAST });
  try {
    assert.equal(server.hasUser('carol@example.org'), false);
    const moduleUrl = new URL('./accounts.js', import.meta.url).href;
    const script = `
      const { AccountStore } = await import(${JSON.stringify(moduleUrl)});
      const s = AccountStore.open(process.argv[1], { hashParams: { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } });
      await s.addUser('carol@example.org', 'secret of the cli');
      await s.addAlias('help@example.org', ['carol@example.org']);
      s.close();`;
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script, file], { timeout: 20_000 },
        (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
    });
    assert.equal(server.hasUser('carol@example.org'), true);
    assert.deepEqual(server.lookup('help@example.org'), { kind: 'alias', targets: ['carol@example.org'] });
    assert.equal(await server.authenticate('carol@example.org', 'secret of the cli'), true);
  } finally {
    server.close();
  }
});

test('the file: WAL mode, schema version, private permissions, newer schema refused', () => {
  const dir = tmpDir();
  const file = accountsFile(path.join(dir, 'nested'));
  assert.equal(file, path.join(dir, 'nested', 'accounts.db'));
  const s = AccountStore.open(file, { hashParams: FAST });
  s.close();
  if (process.platform !== 'win32') assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const db = new Database(file);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.pragma('user_version', { simple: true }), 2); // 1 users and aliases, 2 spam settings
  db.pragma('user_version = 99');
  db.close();
  assert.throws(() => AccountStore.open(file), isAccountError('SCHEMA', /schema version 99/));
  // Reopening an up-to-date file does not re-run the migration (it would fail: tables exist).
  const file2 = accountsFile(tmpDir());
  AccountStore.open(file2, { hashParams: FAST }).close();
  const again = AccountStore.open(file2, { hashParams: FAST });
  again.close();
});

test('mailboxPath: <dataDir>/mail/<domain>/<local>, no traversal', () => {
  const data = path.resolve('/var/lib/portcullis');
  assert.equal(mailboxPath(data, 'Alice@Example.org'), path.join(data, 'mail', 'example.org', 'alice'));
  assert.equal(mailboxPath(data, 'bob@bücher.de'), path.join(data, 'mail', 'xn--bcher-kva.de', 'bob'));
  assert.equal(mailboxPath('rel/data', 'a@b.example'), path.resolve('rel/data', 'mail', 'b.example', 'a'));
  for (const bad of ['../etc@example.org', '..@example.org', 'a/b@example.org', 'a@..', 'a@example.org/../../x', 'a@.', '.x@example.org', 'a\\..\\b@example.org']) {
    assert.throws(() => mailboxPath(data, bad), isAccountError('INVALID_ADDRESS'), bad);
  }
});
