import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SCRYPT_PARAMS, DUMMY_HASH, MAX_PASSWORD_LENGTH, dummyHash, hashPassword, needsRehash, scryptHasher,
  verifyPassword, type ScryptParams,
} from './password-hash.js';

const FAST: ScryptParams = { ln: 10, r: 8, p: 1, saltBytes: 16, keyBytes: 32 };
const FORMAT = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

test('default hash: self-describing format with N=2^15, 16-byte salt, 32-byte key', async () => {
  // Also proves maxmem is set: Node's default 32 MiB cap refuses N=2^15, r=8.
  const h = await hashPassword('correct horse battery');
  const m = FORMAT.exec(h);
  assert.ok(m, h);
  assert.deepEqual([m[1], m[2], m[3]], ['15', '8', '1']);
  assert.equal(Buffer.from(m[4], 'base64').length, 16);
  assert.equal(Buffer.from(m[5], 'base64').length, 32);
  assert.equal(await verifyPassword('correct horse battery', h), true);
  assert.equal(await verifyPassword('correct horse batterY', h), false);
  assert.equal(needsRehash(h), false);
});

test('interoperates with RFC 7914 test vector (scrypt "pleaseletmein" / "SodiumChloride", N=16384)', async () => {
  const key = '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2' +
    'd5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887';
  const salt = Buffer.from('SodiumChloride').toString('base64').replace(/=+$/, '');
  const k64 = Buffer.from(key, 'hex').toString('base64').replace(/=+$/, '');
  const encoded = `$scrypt$ln=14,r=8,p=1$${salt}$${k64}`;
  assert.equal(await verifyPassword('pleaseletmein', encoded), true);
  assert.equal(await verifyPassword('pleaseletmeim', encoded), false);
  // 14-byte salt and 64-byte key differ from the defaults, as does ln.
  assert.equal(needsRehash(encoded), true);
});

test('fresh salt each time', async () => {
  const a = await hashPassword('same password', FAST);
  const b = await hashPassword('same password', FAST);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('same password', a), true);
  assert.equal(await verifyPassword('same password', b), true);
});

test('passwords are compared after Unicode NFC normalisation', async () => {
  const composed = 'caf\u00e9-au-lait';
  const decomposed = 'cafe\u0301-au-lait';
  const h = await hashPassword(composed, FAST);
  assert.equal(await verifyPassword(decomposed, h), true);
  assert.equal(await verifyPassword('cafe-au-lait', h), false);
});

test('needsRehash follows each parameter', async () => {
  const h = await hashPassword('some password', FAST);
  assert.equal(needsRehash(h, FAST), false);
  assert.equal(needsRehash(h, { ...FAST, ln: 11 }), true);
  assert.equal(needsRehash(h, { ...FAST, r: 4 }), true);
  assert.equal(needsRehash(h, { ...FAST, p: 2 }), true);
  assert.equal(needsRehash(h, { ...FAST, keyBytes: 64 }), true);
  assert.equal(needsRehash(h, { ...FAST, saltBytes: 32 }), true);
  assert.equal(needsRehash(h), true); // against the defaults (ln=15)
  assert.equal(needsRehash('not a hash'), true);
});

test('malformed or hostile hashes verify as false without throwing', async () => {
  const good = await hashPassword('some password', FAST);
  const [, , params, salt, key] = good.split('$');
  const cases = [
    '',
    'plaintext',
    `$argon2id$${params}$${salt}$${key}`,
    `$scrypt$${params}$${salt}`,
    `$scrypt$ln=30,r=8,p=1$${salt}$${key}`, // 2^30: would take gigabytes
    `$scrypt$ln=20,r=32,p=1$${salt}$${key}`, // 4 GiB
    `$scrypt$ln=10,r=0,p=1$${salt}$${key}`,
    `$scrypt$ln=10,r=8,p=1$${salt}==$${key}`, // padded base64 is not canonical
    `$scrypt$ln=10,r=8,p=1$${salt}$${key.slice(0, 10)}`, // key too short
    `$scrypt$ln=10,r=8,p=1$${salt}$${key}\n`,
  ];
  for (const c of cases) {
    assert.equal(await verifyPassword('some password', c), false, JSON.stringify(c));
  }
  assert.equal(await verifyPassword('some password', good), true);
});

test('over-long passwords are refused for hashing and never verify', async () => {
  const long = 'x'.repeat(MAX_PASSWORD_LENGTH + 1);
  await assert.rejects(hashPassword(long, FAST), RangeError);
  const h = await hashPassword('x'.repeat(MAX_PASSWORD_LENGTH), FAST);
  assert.equal(await verifyPassword('x'.repeat(MAX_PASSWORD_LENGTH), h), true);
  assert.equal(await verifyPassword(long, h), false);
});

test('out-of-range parameters are refused when hashing', async () => {
  await assert.rejects(hashPassword('some password', { ...FAST, ln: 9 }), RangeError);
  await assert.rejects(hashPassword('some password', { ...FAST, keyBytes: 8 }), RangeError);
  assert.throws(() => scryptHasher({ ...FAST, p: 0 }), RangeError);
});

test('DUMMY_HASH: well-formed, current parameters, stable, matches no password', async () => {
  assert.match(DUMMY_HASH, FORMAT);
  assert.equal(needsRehash(DUMMY_HASH), false);
  assert.equal(dummyHash(), DUMMY_HASH);
  const fast = dummyHash(FAST);
  assert.equal(dummyHash(FAST), fast);
  assert.notEqual(fast, DUMMY_HASH);
  assert.equal(needsRehash(fast, FAST), false);
  for (const pw of ['', 'password', 'correct horse battery']) {
    assert.equal(await verifyPassword(pw, fast), false);
  }
});

/** CPU time (ms) of the whole process, scrypt's thread-pool threads included: other load on a shared machine hardly moves it, unlike wall time. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = process.cpuUsage();
  await f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

test('verifying against the dummy costs about what a real verification costs', async () => {
  const params: ScryptParams = { ...DEFAULT_SCRYPT_PARAMS, ln: 14 };
  const real = await hashPassword('the real password', params);
  const dummy = dummyHash(params);
  const realT: number[] = [];
  const dummyT: number[] = [];
  for (let i = 0; i < 7; i++) {
    realT.push(await timed(() => verifyPassword('a wrong password', real)));
    dummyT.push(await timed(() => verifyPassword('a wrong password', dummy)));
  }
  // The cheapest of several runs: the least disturbed by anything else the process does.
  const ratio = Math.min(...dummyT) / Math.min(...realT);
  // Loose bounds (shared CI machines); without a real scrypt run the dummy would take ~0 ms.
  assert.ok(ratio > 0.5 && ratio < 2, `dummy/real time ratio ${ratio.toFixed(2)} (${dummyT} vs ${realT})`);
});
