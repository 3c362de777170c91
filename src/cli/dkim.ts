// `portcullis dkim keygen|list|rotate|remove`: the DKIM keys of our domains, kept under the data
// directory (data/dkim/<domain>/<selector>.key, src/delivery/dkim/keys.ts). A domain with an
// active key has its outgoing mail signed (docs/outbound-dkim.md); the running gateway sees a
// change without a restart. Exit status: 0 done, 1 refused (named fault), 2 usage error.
import { parseArgs } from 'node:util';
import { DkimKeyStore, checkName, dnsRecord, type DkimKey, type DkimKeyType } from '../delivery/dkim/keys.js';

export const DKIM_USAGE = `usage: portcullis dkim keygen DOMAIN [--selector S] [--type rsa|ed25519]
       portcullis dkim list [DOMAIN] [--json]
       portcullis dkim rotate DOMAIN [--type rsa|ed25519]
       portcullis dkim remove DOMAIN SELECTOR

keygen makes a key (RSA 2048 by default; Ed25519, RFC 8463, as a second signature beside RSA),
enables signing for DOMAIN and prints the DNS TXT record to publish. rotate makes a new key
(a dated selector) for each active key type of DOMAIN (or only --type): the new key signs, the
old one stays published and inactive until "dkim remove".
`;

export interface DkimCliConfig {
  readonly data_dir: string;
  readonly domains?: readonly string[];
}

export interface DkimIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly now?: () => Date;
}

const std: DkimIo = { stdout: process.stdout, stderr: process.stderr };

export async function dkimCommand(argv: readonly string[], config: DkimCliConfig, io: DkimIo = std): Promise<number> {
  let values: { selector?: string; type?: string; json?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { selector: { type: 'string', short: 's' }, type: { type: 'string', short: 't' }, json: { type: 'boolean' } },
    }));
  } catch (err) {
    io.stderr.write(`dkim: ${(err as Error).message}\n${DKIM_USAGE}`);
    return 2;
  }
  const [sub, ...args] = positionals;
  const usage = (why: string) => {
    io.stderr.write(`dkim: ${why}\n${DKIM_USAGE}`);
    return 2;
  };
  const type = values.type;
  if (type !== undefined && type !== 'rsa' && type !== 'ed25519') return usage(`--type must be rsa or ed25519, not "${type}"`);
  const store = new DkimKeyStore(config.data_dir);
  const now = io.now?.() ?? new Date();
  const domain = args[0]?.toLowerCase().replace(/\.$/, '');
  try {
    switch (sub) {
      case 'keygen':
        if (args.length !== 1) return usage('keygen takes one DOMAIN');
        return keygen(store, config, domain!, (type ?? 'rsa') as DkimKeyType, values.selector?.toLowerCase(), now, io);
      case 'list':
        if (args.length > 1) return usage('list takes at most one DOMAIN');
        return list(store, domain, !!values.json, io);
      case 'rotate':
        if (args.length !== 1) return usage('rotate takes one DOMAIN');
        if (values.selector) return usage('rotate chooses dated selectors itself (no --selector)');
        return rotate(store, domain!, type as DkimKeyType | undefined, now, io);
      case 'remove':
        if (args.length !== 2) return usage('remove takes DOMAIN SELECTOR');
        return remove(store, domain!, args[1]!.toLowerCase(), io);
      default:
        return usage(sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed');
    }
  } catch (err) {
    io.stderr.write(`dkim: ${(err as Error).message}\n`);
    return 1;
  }
}

function valid(domain: string, selector?: string): void {
  const fault = checkName(domain, selector);
  if (fault) throw new Error(fault);
}

function keygen(store: DkimKeyStore, config: DkimCliConfig, domain: string, type: DkimKeyType, selector: string | undefined, now: Date, io: DkimIo): number {
  valid(domain, selector);
  const same = store.list(domain).find((k) => k.active && k.type === type);
  if (same) throw new Error(`${domain} has an active ${type} key already (selector ${same.selector}): use "dkim rotate ${domain}" to replace it`);
  const key = store.create(domain, selector ?? store.freshSelector(domain, type, now), type, now);
  io.stdout.write(`${dnsRecord(key)}\n`);
  const others = store.list(domain).filter((k) => k.active && k.selector !== key.selector);
  io.stderr.write(`created ${type} key "${key.selector}" for ${domain}; mail from ${domain} is signed${others.length ? ` with it and ${others.map((k) => k.selector).join(', ')}` : ''}: publish the record above\n`);
  if (config.domains && !config.domains.includes(domain) && !config.domains.some((d) => domain.endsWith(`.${d}`) || d.endsWith(`.${domain}`))) {
    io.stderr.write(`note: ${domain} is not in "domains" of this configuration\n`);
  }
  return 0;
}

interface ListRow {
  domain: string;
  selector: string;
  type: DkimKeyType;
  created: string;
  active: boolean;
  record: string;
}

function row(k: DkimKey): ListRow {
  return { domain: k.domain, selector: k.selector, type: k.type, created: k.created, active: k.active, record: dnsRecord(k) };
}

function list(store: DkimKeyStore, domain: string | undefined, json: boolean, io: DkimIo): number {
  if (domain) valid(domain);
  const rows = store.list(domain).map(row);
  if (json) {
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (!rows.length) {
    io.stdout.write(domain ? `no DKIM key for ${domain}\n` : 'no DKIM keys (portcullis dkim keygen DOMAIN)\n');
    return 0;
  }
  for (const r of rows) {
    io.stdout.write(`${r.domain}  ${r.selector}  ${r.type}  ${r.created}  ${r.active ? 'active' : 'inactive'}\n  ${r.record}\n`);
  }
  return 0;
}

function rotate(store: DkimKeyStore, domain: string, type: DkimKeyType | undefined, now: Date, io: DkimIo): number {
  valid(domain);
  const keys = store.list(domain);
  if (!keys.length) throw new Error(`${domain} has no DKIM key: "dkim keygen ${domain}" makes one`);
  const active = keys.filter((k) => k.active && (!type || k.type === type));
  const types = [...new Set(active.map((k) => k.type))];
  if (!types.length) types.push(type ?? keys[keys.length - 1]!.type);
  for (const t of types) {
    const key = store.create(domain, store.freshSelector(domain, t, now), t, now);
    for (const old of active.filter((k) => k.type === t)) store.setActive(domain, old.selector, false);
    io.stdout.write(`${dnsRecord(key)}\n`);
    const retired = active.filter((k) => k.type === t).map((k) => k.selector);
    io.stderr.write(`new ${t} key "${key.selector}" signs mail from ${domain}${retired.length ? `; ${retired.join(', ')} no longer signs (keep its record published until signed mail in transit has arrived, then "dkim remove ${domain} ${retired[0]}")` : ''}\n`);
  }
  return 0;
}

function remove(store: DkimKeyStore, domain: string, selector: string, io: DkimIo): number {
  valid(domain, selector);
  if (!store.remove(domain, selector)) throw new Error(`${domain} has no key with selector "${selector}"`);
  const left = store.list(domain).filter((k) => k.active);
  io.stdout.write(`removed ${selector}._domainkey.${domain}${left.length ? '' : `; ${domain} has no active key left: its mail is no longer signed`}\n`);
  return 0;
}
