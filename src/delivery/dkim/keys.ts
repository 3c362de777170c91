// The DKIM key store under the data directory: data/dkim/<domain>/<selector>.key (mode 0600,
// directories 0700) plus <selector>.json (type, created, active). Keys are made with node:crypto.
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync, rmSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export type DkimKeyType = 'rsa' | 'ed25519';

export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly type: DkimKeyType;
  readonly created: string;
  readonly active: boolean;
  readonly privateKeyPem: string;
}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const SELECTOR = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function checkName(domain: string, selector?: string): string | undefined {
  if (!DOMAIN.test(domain)) return `"${domain}" is not a domain name`;
  if (selector !== undefined && !SELECTOR.test(selector)) return `"${selector}" is not a selector (letters, digits, hyphens)`;
  return undefined;
}

export function generateKey(type: DkimKeyType): string {
  const pair = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ed25519');
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The p= value: RSA SubjectPublicKeyInfo DER; Ed25519 the raw 32-byte key (RFC 8463 section 4.2). */
export function publicKeyValue(privateKeyPem: string, type: DkimKeyType): string {
  const der = createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' });
  return (type === 'ed25519' ? der.subarray(der.length - 32) : der).toString('base64');
}

/** The TXT record in zone-file form, split into strings of at most 255 octets. */
export function dnsRecord(key: Pick<DkimKey, 'domain' | 'selector' | 'type' | 'privateKeyPem'>): string {
  const p = publicKeyValue(key.privateKeyPem, key.type);
  const parts = [`v=DKIM1; k=${key.type}; `];
  for (let i = 0; i < p.length; i += 250) parts.push((i === 0 ? 'p=' : '') + p.slice(i, i + 250));
  return `${key.selector}._domainkey.${key.domain}. IN TXT ( ${parts.map((s) => `"${s}"`).join(' ')} )`;
}

/** The TXT value as a resolver returns it (strings joined). */
export function txtValue(key: Pick<DkimKey, 'type' | 'privateKeyPem'>): string {
  return `v=DKIM1; k=${key.type}; p=${publicKeyValue(key.privateKeyPem, key.type)}`;
}

export class DkimKeyStore {
  constructor(private readonly dataDir: string) {}

  private dir(domain: string): string {
    return join(this.dataDir, 'dkim', domain);
  }

  create(domain: string, selector: string, type: DkimKeyType, now = new Date()): DkimKey {
    const fault = checkName(domain, selector);
    if (fault) throw new Error(fault);
    const dir = this.dir(domain);
    mkdirSync(join(this.dataDir, 'dkim'), { recursive: true, mode: 0o700 });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, `${selector}.key`);
    if (existsSync(keyFile)) throw new Error(`a key for selector "${selector}" of ${domain} exists already`);
    const privateKeyPem = generateKey(type);
    writeFileSync(keyFile, privateKeyPem, { mode: 0o600, flag: 'wx' });
    const meta = { type, created: now.toISOString(), active: true };
    this.writeMeta(domain, selector, meta);
    return { domain, selector, privateKeyPem, ...meta };
  }

  /** Marks a key as signing or not (rotation keeps the old key, inactive, until it is removed). */
  setActive(domain: string, selector: string, active: boolean): void {
    const key = this.list(domain).find((k) => k.selector === selector);
    if (!key) throw new Error(`no key for selector "${selector}" of ${domain}`);
    this.writeMeta(domain, selector, { type: key.type, created: key.created, active });
  }

  /** A selector not used yet for `domain`: the type's prefix and the date (rsa20261207, ed20261207-2). */
  freshSelector(domain: string, type: DkimKeyType, now = new Date()): string {
    const base = `${type === 'rsa' ? 'rsa' : 'ed'}${now.toISOString().slice(0, 10).replace(/-/g, '')}`;
    const taken = (s: string) => existsSync(join(this.dir(domain), `${s}.key`));
    let selector = base;
    for (let n = 2; taken(selector); n++) selector = `${base}-${n}`;
    return selector;
  }

  /** The directory the gateway watches for `domain` (its mtime changes with every key change). */
  domainDir(domain: string): string {
    return this.dir(domain);
  }

  // Written to a temporary file and renamed: a reader never sees half a file, and the rename
  // changes the directory's mtime, which tells a running gateway to reload the domain's keys.
  private writeMeta(domain: string, selector: string, meta: { type: DkimKeyType; created: string; active: boolean }): void {
    const file = join(this.dir(domain), `${selector}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(meta) + '\n', { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  list(domain?: string): DkimKey[] {
    const root = join(this.dataDir, 'dkim');
    if (!existsSync(root)) return [];
    if (domain !== undefined && checkName(domain)) throw new Error(checkName(domain));
    const domains = domain ? [domain] : readdirSync(root);
    const out: DkimKey[] = [];
    for (const d of domains) {
      if (!existsSync(this.dir(d))) continue;
      for (const f of readdirSync(this.dir(d)).filter((n) => n.endsWith('.json') && existsSync(join(this.dir(d), n.replace(/\.json$/, '.key')))).sort()) {
        const selector = f.slice(0, -5);
        const meta = JSON.parse(readFileSync(join(this.dir(d), f), 'utf8')) as { type: DkimKeyType; created: string; active: boolean };
        out.push({ domain: d, selector, ...meta, privateKeyPem: readFileSync(join(this.dir(d), `${selector}.key`), 'utf8') });
      }
    }
    // Per domain, oldest first: the order keys were made in.
    return out.sort((a, b) => a.domain.localeCompare(b.domain) || a.created.localeCompare(b.created) || a.selector.localeCompare(b.selector));
  }

  remove(domain: string, selector: string): boolean {
    const fault = checkName(domain, selector);
    if (fault) throw new Error(fault);
    const base = join(this.dir(domain), selector);
    if (!existsSync(`${base}.key`)) return false;
    rmSync(`${base}.key`);
    rmSync(`${base}.json`, { force: true });
    return true;
  }
}
