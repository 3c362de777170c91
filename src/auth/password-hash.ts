// Password hashing with scrypt (node:crypto), stored in a self-describing, PHC-like string:
//
//   $scrypt$ln=15,r=8,p=1$<salt, base64 unpadded>$<key, base64 unpadded>
//
// `ln` is log2(N). Because every stored hash names its own parameters, the defaults can be
// raised later: verifyPassword() still checks old hashes, and needsRehash() tells the caller
// to store a fresh hash after the next successful login.
import crypto from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly ln: number;
  /** Block size. */
  readonly r: number;
  /** Parallelisation. */
  readonly p: number;
  /** Salt length in bytes. */
  readonly saltBytes: number;
  /** Derived key length in bytes. */
  readonly keyBytes: number;
}

/** The current parameters: N = 2^15, r = 8, p = 1 (32 MiB, roughly 50–150 ms per hash). */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ ln: 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 });

// Bounds on what a stored hash may ask for, so that a corrupted or hostile row cannot make a
// login allocate gigabytes or spin for minutes.
const LIMITS = { lnMin: 10, lnMax: 20, rMax: 32, pMax: 16, saltMin: 8, saltMax: 64, keyMin: 16, keyMax: 64, memMax: 256 * 1024 * 1024 };

/** Longest password accepted for hashing (characters); longer input is refused, not truncated. */
export const MAX_PASSWORD_LENGTH = 1024;

interface Decoded {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function scryptAsync(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs about 128 * N * r bytes; leave headroom (Node's default cap is 32 MiB, which
  // is exactly what N = 2^15, r = 8 needs and therefore too little).
  const maxmem = 256 * N * params.r + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    crypto.scrypt(normalizePassword(password), salt, params.keyBytes, { N, r: params.r, p: params.p, maxmem },
      (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Unicode NFC, so that the same password typed on two systems (composed or decomposed
 *  accents) hashes the same. */
function normalizePassword(password: string): string {
  return password.normalize('NFC');
}

function checkParams(params: ScryptParams): void {
  const ok = Number.isInteger(params.ln) && params.ln >= LIMITS.lnMin && params.ln <= LIMITS.lnMax &&
    Number.isInteger(params.r) && params.r >= 1 && params.r <= LIMITS.rMax &&
    Number.isInteger(params.p) && params.p >= 1 && params.p <= LIMITS.pMax &&
    Number.isInteger(params.saltBytes) && params.saltBytes >= LIMITS.saltMin && params.saltBytes <= LIMITS.saltMax &&
    Number.isInteger(params.keyBytes) && params.keyBytes >= LIMITS.keyMin && params.keyBytes <= LIMITS.keyMax &&
    128 * 2 ** params.ln * params.r <= LIMITS.memMax;
  if (!ok) throw new RangeError(`scrypt parameters out of range: ${JSON.stringify(params)}`);
}

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

function encode(params: ScryptParams, salt: Buffer, key: Buffer): string {
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

const ENCODED_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,88})\$([A-Za-z0-9+/]{22,88})$/;

/** Parses an encoded hash; undefined when it is not one of ours or its parameters are out of bounds. */
function decode(encoded: string): Decoded | undefined {
  const m = ENCODED_RE.exec(encoded);
  if (!m) return undefined;
  const salt = Buffer.from(m[4], 'base64');
  const key = Buffer.from(m[5], 'base64');
  // Re-encoding must give back the same text, which rejects non-canonical base64.
  if (b64(salt) !== m[4] || b64(key) !== m[5]) return undefined;
  const params: ScryptParams = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]), saltBytes: salt.length, keyBytes: key.length };
  try {
    checkParams(params);
  } catch {
    return undefined;
  }
  return { params, salt, key };
}

/** Hashes a password with fresh random salt. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  checkParams(params);
  if (password.length > MAX_PASSWORD_LENGTH) throw new RangeError(`password longer than ${MAX_PASSWORD_LENGTH} characters`);
  const salt = crypto.randomBytes(params.saltBytes);
  const key = await scryptAsync(password, salt, params);
  return encode(params, salt, key);
}

/**
 * True when `password` matches `encoded`. A malformed hash or an over-long password gives
 * false, never an exception, so a login path cannot be crashed by a bad row.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const d = decode(encoded);
  if (!d || password.length > MAX_PASSWORD_LENGTH) return false;
  const key = await scryptAsync(password, d.salt, d.params);
  return key.length === d.key.length && crypto.timingSafeEqual(key, d.key);
}

/** True when `encoded` was made with other parameters than `params` (or cannot be read at all). */
export function needsRehash(encoded: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const d = decode(encoded);
  if (!d) return true;
  return d.params.ln !== params.ln || d.params.r !== params.r || d.params.p !== params.p ||
    d.params.saltBytes !== params.saltBytes || d.params.keyBytes !== params.keyBytes;
}

const dummies = new Map<string, string>();

/**
 * A hash that no password matches, with the given parameters, made once per parameter set on
 * first use. Verifying a password against it costs exactly what verifying a real hash costs,
 * which is what a login for an unknown user must spend so that timing does not reveal whether
 * the account exists. Its salt and key are random bytes: no scrypt run is needed to make it,
 * so even the first call costs no extra time.
 */
export function dummyHash(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): string {
  checkParams(params);
  const id = `${params.ln},${params.r},${params.p},${params.saltBytes},${params.keyBytes}`;
  let h = dummies.get(id);
  if (h === undefined) {
    h = encode(params, crypto.randomBytes(params.saltBytes), crypto.randomBytes(params.keyBytes));
    dummies.set(id, h);
  }
  return h;
}

/** The dummy hash for the default parameters (see dummyHash()). */
export const DUMMY_HASH: string = dummyHash();

/** The hashing operations the account store needs; injectable so tests can observe them. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, encoded: string): Promise<boolean>;
  needsRehash(encoded: string): boolean;
  /** The hash to verify against when the user does not exist. */
  dummy(): string;
}

/** The scrypt hasher with the given parameters (the defaults unless told). */
export function scryptHasher(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): PasswordHasher {
  checkParams(params);
  return {
    hash: (password) => hashPassword(password, params),
    verify: verifyPassword,
    needsRehash: (encoded) => needsRehash(encoded, params),
    dummy: () => dummyHash(params),
  };
}
