// Loading the configuration: YAML file (or nothing: embedded defaults), validated against the
// schema, every fault reported with the key path and what is wrong, then frozen.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { migrateLegacyActions } from './legacy-actions.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[], readonly file?: string) {
    super(`${file ? `${file}: ` : ''}invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

function keyPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(top level)';
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${keyPath([...issue.path, k])}: unknown key`).join('\n  ');
  }
  return `${keyPath(issue.path)}: ${issue.message}`;
}

/** Validates a parsed YAML document; throws ConfigError naming each bad key. */
export function buildConfig(raw: unknown, file?: string): Config {
  if (typeof (raw ?? {}) !== 'object' || Array.isArray(raw)) throw new ConfigError(['(top level): must be a mapping of keys'], file);
  const legacy = migrateLegacyActions(raw ?? {});
  if (legacy.problems.length) throw new ConfigError(legacy.problems, file);
  const result = configSchema.safeParse(legacy.doc);
  if (!result.success) throw new ConfigError(result.error.issues.map(describe), file);
  const c = result.data;
  const domains = c.domains ?? [...new Set(['localhost', c.hostname])];
  const problems: string[] = [];
  const names = new Set<string>();
  c.listeners.forEach((l, i) => {
    if (names.has(l.name)) problems.push(`listeners[${i}].name: "${l.name}" is used by another listener`);
    names.add(l.name);
  });
  const endpoints = new Set<string>();
  c.listeners.forEach((l, i) => {
    // A milter on a unix socket has a path and no port.
    const path = 'path' in l ? l.path : undefined;
    const key = path ?? `${l.address}:${l.port}`;
    if (l.port !== 0 && endpoints.has(key)) problems.push(`listeners[${i}]: ${key} is used by another listener`);
    endpoints.add(key);
  });
  c.relay.domains.forEach((d, i) => {
    if (domains.includes(d.domain)) problems.push(`relay.domains[${i}].domain: ${d.domain} is also a local domain (domains)`);
  });
  c.relay.routes.forEach((r, i) => {
    if (domains.includes(r.domain)) problems.push(`relay.routes[${i}].domain: ${r.domain} is a local domain; local mail goes to Maildir`);
  });
  const roleMailbox = c.roles.mailbox ?? `postmaster@${domains[0]}`;
  if (!/^[^@\s]+@[^@\s]+$/.test(roleMailbox)) problems.push(`roles.mailbox: "${roleMailbox}" is not an address`);
  else if (!domains.includes(roleMailbox.split('@')[1]!.toLowerCase())) problems.push(`roles.mailbox: ${roleMailbox} is not in a local domain (domains)`);
  if (c.policy.thresholds.tag > c.policy.thresholds.junk || c.policy.thresholds.junk > c.policy.thresholds.reject) {
    problems.push('policy.thresholds: must satisfy tag <= junk <= reject');
  }
  if (problems.length) throw new ConfigError(problems, file);
  const config: Config = {
    ...c,
    data_dir: path.resolve(c.data_dir),
    domains,
    roles: { ...c.roles, mailbox: roleMailbox.toLowerCase() },
    warnings: legacy.warnings,
  };
  return deepFreeze(config);
}

/** Reads and validates a YAML file; a missing file is an error, a missing argument the defaults. */
export function loadConfig(file?: string): Config {
  if (!file) return buildConfig({});
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read: ${(err as Error).message}`], file);
  }
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => `YAML syntax, line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`), file);
  }
  return buildConfig(doc.toJS(), file);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
