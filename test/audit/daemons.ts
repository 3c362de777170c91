// Third-party mail servers for the audit's tests, run as private instances on loopback:
// Postfix (its own config directory, queue and data directories in a temporary folder, only the
// services the tests need in master.cf) and Dovecot (its own config file, base_dir in the
// temporary folder, listeners on loopback high ports), plus certificates made with the openssl
// command (a test CA, certificates it signs — one already expired — and a self-signed one).
//
// Debian packages: postfix (already on the machine for the benchmark), dovecot-imapd,
// dovecot-pop3d, openssl; chromium for the HTML report test. Postfix's master and Dovecot must
// run as root (they switch to their own users).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { freePorts, sleep, tcpAccepts, waitFor } from '../helpers/wait.js';

export const strict = process.env.CI === 'true' || process.env.PORTCULLIS_TEST_STRICT === '1';

const TOOLS = {
  postfix: { files: ['/usr/sbin/postfix', '/usr/lib/postfix/sbin/master'], packages: 'postfix' },
  dovecot: { files: ['/usr/sbin/dovecot', '/usr/lib/dovecot/imap-login', '/usr/lib/dovecot/pop3-login'], packages: 'dovecot-imapd dovecot-pop3d' },
  openssl: { files: ['/usr/bin/openssl'], packages: 'openssl' },
  chromium: { files: ['/usr/bin/chromium'], packages: 'chromium' },
} as const;
export type Tool = keyof typeof TOOLS;

export function toolProblem(tool: Tool): string | undefined {
  const t = TOOLS[tool];
  const missing = t.files.filter((f) => !fs.existsSync(f));
  if (missing.length) return `${tool} is not installed (${missing.join(', ')} missing; Debian: apt-get install ${t.packages})`;
  if ((tool === 'postfix' || tool === 'dovecot') && process.getuid?.() !== 0) return `${tool} private instances need root`;
  return undefined;
}

/** True when every tool is there; otherwise skips the test (or throws in CI / strict mode). */
export function needTools(t: TestContext, ...tools: Tool[]): boolean {
  const problems = tools.map(toolProblem).filter((p): p is string => !!p);
  if (!problems.length) return true;
  if (strict) throw new Error(`required tool missing: ${problems.join('; ')}`);
  t.skip(problems.join('; '));
  return false;
}

export function missingTools(...tools: Tool[]): string | undefined {
  const problems = tools.map(toolProblem).filter((p): p is string => !!p);
  return problems.length ? problems.join('; ') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Temporary directories readable by the daemons' own users

export async function tempDir(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  await fsp.chmod(dir, 0o755);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  if (process.env.KEEP_TEST_TMP === '1') {
    process.stderr.write(`# kept ${dir}\n`);
    return;
  }
  await fsp.rm(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Certificates (openssl command; EC keys, quick to make)

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  /** The test CA's certificate (PEM file). */
  readonly ca: string;
  /** Signed by the CA, valid now. */
  issue(name: string, alt: readonly string[]): KeyPair;
  /** Signed by the CA, expired in 2020. */
  issueExpired(name: string, alt: readonly string[]): KeyPair;
  /** Self-signed, valid now. */
  selfSigned(name: string): KeyPair;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makeCerts(dir: string): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.txt'), '');
  fs.writeFileSync(path.join(dir, 'serial'), '1000\n');
  fs.writeFileSync(path.join(dir, 'ca.cnf'), [
    '[ca]', 'default_ca = audit_ca', '[audit_ca]', `database = ${dir}/index.txt`, `new_certs_dir = ${dir}`, `serial = ${dir}/serial`,
    'default_md = sha256', 'policy = any', 'copy_extensions = copy', 'unique_subject = no', 'default_days = 30',
    '[any]', 'commonName = supplied', '',
  ].join('\n'));
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Portcullis audit test CA'], dir);
  const request = (name: string, alt: readonly string[]) => {
    openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${alt[0] ?? name}`,
      '-addext', `subjectAltName=${alt.map((a) => `DNS:${a}`).join(',')}`], dir);
  };
  const sign = (name: string, dates: string[]) => {
    openssl(['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${name}.csr`, '-out', `${name}.pem`, ...dates], dir);
    return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  };
  return {
    ca: path.join(dir, 'ca.pem'),
    issue(name, alt) {
      request(name, alt);
      return sign(name, ['-days', '30']);
    },
    issueExpired(name, alt) {
      request(name, alt);
      return sign(name, ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
    },
    selfSigned(name) {
      openssl(['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${name}`,
        '-addext', `subjectAltName=DNS:${name}`], dir);
      return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

const children = new Set<ChildProcess>();
// If the test process dies first: SIGTERM, which Postfix's master and Dovecot pass on to the
// processes they started (SIGKILL would leave those behind).
process.on('exit', () => {
  for (const c of children) c.kill('SIGTERM');
});

function startChild(cmd: string, args: string[], logFile: string): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  const take = (d: Buffer) => {
    output += d.toString();
    log.write(d);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  child.on('exit', () => log.end());
  return { child, output: () => output };
}

async function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  if (await Promise.race([exited.then(() => true), sleep(timeoutMs).then(() => false)])) return;
  child.kill('SIGKILL');
  await exited;
}

async function waitListening(what: string, address: string, ports: readonly number[], child: ChildProcess, output: () => string): Promise<void> {
  await waitFor(`${what} to listen on ${address}:${ports.join(',')}`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode})`);
    for (const p of ports) if (!(await tcpAccepts(p, address))) return false;
    return true;
  }, { timeoutMs: 30_000, intervalMs: 200, details: () => output().slice(-3000) });
}

function readTail(file: string, bytes = 20_000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '';
  }
}

/** Free ports on a loopback address (each test server has its own 127.0.0.x). */
export function portsOn(address: string, n: number): Promise<number[]> {
  return freePorts(n, address);
}

// ---------------------------------------------------------------------------------------------
// Postfix

export interface PostfixOptions {
  readonly address: string;
  readonly hostname: string;
  /** main.cf lines besides the basics (queue, data, owner, interfaces, logging). */
  readonly main: readonly string[];
  /** master.cf service lines; "{address}" is replaced. The private services are added. */
  readonly services: readonly string[];
  /** Ports to wait for. */
  readonly ports: readonly number[];
}

export interface Daemon {
  readonly dir: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

const POSTFIX_PRIVATE = [
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'proxymap unix - - n - - proxymap',
  'anvil unix - - n - 1 anvil',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'tlsmgr unix - - n 1000? 1 tlsmgr',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
];

export async function startPostfix(dir: string, o: PostfixOptions): Promise<Daemon> {
  await fsp.mkdir(path.join(dir, 'queue'), { recursive: true });
  await fsp.mkdir(path.join(dir, 'data'), { recursive: true });
  spawnSync('chown', ['postfix', path.join(dir, 'data')]);
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    // Postfix wants inet_interfaces to be an address of an interface; 127.0.0.x other than .1
    // is not one (Linux routes all of 127/8 to lo), so the services bind it in master.cf and
    // proxy_interfaces makes Postfix treat it as its own address.
    'inet_interfaces = 127.0.0.1',
    `proxy_interfaces = ${o.address}`,
    'inet_protocols = ipv4',
    `myhostname = ${o.hostname}`,
    'smtpd_banner = $myhostname ESMTP Postfix (audit test)',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'smtpd_peername_lookup = no',
    'alias_maps =',
    'alias_database =',
    'biff = no',
    'smtputf8_enable = no',
    ...o.main,
    '',
  ];
  await fsp.writeFile(path.join(dir, 'main.cf'), main.join('\n'));
  await fsp.writeFile(path.join(dir, 'master.cf'), [...o.services.map((s) => s.replaceAll('{address}', o.address)), ...POSTFIX_PRIVATE, ''].join('\n'));
  // `postfix check` creates the queue directories with their owners and modes.
  const check = spawnSync('/usr/sbin/postfix', ['-c', dir, 'check'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`postfix -c ${dir} check failed (${check.status}): ${check.stderr}${check.stdout}`);
  // master stays in the foreground (it does not fork); "-d" would pass debug mode on to the
  // daemons, whose smtpd processes then never return to the accept loop.
  const started = startChild('/usr/lib/postfix/sbin/master', ['-c', dir, '-s'], path.join(dir, 'postfix.log'));
  const child = started.child;
  const output = () => `${started.output()}${readTail(path.join(dir, 'maillog'))}`;
  try {
    await waitListening('postfix', o.address, o.ports, child, output);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { dir, output, stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------------
// Dovecot

export interface DovecotOptions {
  readonly address: string;
  readonly ports: { imap: number; imaps: number; pop3: number; pop3s: number };
  readonly cert: KeyPair;
  /** Extra dovecot.conf lines (ssl, disable_plaintext_auth, ssl_min_protocol…). */
  readonly settings: readonly string[];
  /**
   * passwd-file lines ("user:{PLAIN}secret::::::"); without them the user database is empty and
   * no login can succeed. With them the mail directory is writable by the mail user (nobody).
   */
  readonly passwd?: readonly string[];
}

export async function startDovecot(dir: string, o: DovecotOptions): Promise<Daemon & { authSocket: string }> {
  const run = path.join(dir, 'run');
  await fsp.mkdir(path.join(dir, 'mail'), { recursive: true });
  // An empty user database unless told otherwise: no login can ever succeed.
  await fsp.writeFile(path.join(dir, 'passwd'), o.passwd?.length ? `${o.passwd.join('\n')}\n` : '');
  if (o.passwd?.length) await fsp.chmod(path.join(dir, 'mail'), 0o1777);
  const conf = [
    `base_dir = ${run}`,
    `state_dir = ${dir}/state`,
    `instance_name = audit-${path.basename(dir)}`,
    `log_path = ${dir}/dovecot.log`,
    'protocols = imap pop3',
    `listen = ${o.address}`,
    `ssl_cert = <${o.cert.cert}`,
    `ssl_key = <${o.cert.key}`,
    'auth_mechanisms = plain login',
    'auth_failure_delay = 0',
    'passdb {', '  driver = passwd-file', `  args = ${dir}/passwd`, '}',
    'userdb {', '  driver = static', `  args = uid=nobody gid=nogroup home=${dir}/mail/%u`, '}',
    `mail_location = maildir:${dir}/mail/%u`,
    'service imap-login {',
    `  inet_listener imap {`, `    port = ${o.ports.imap}`, '  }',
    `  inet_listener imaps {`, `    port = ${o.ports.imaps}`, '    ssl = yes', '  }',
    '}',
    'service pop3-login {',
    `  inet_listener pop3 {`, `    port = ${o.ports.pop3}`, '  }',
    `  inet_listener pop3s {`, `    port = ${o.ports.pop3s}`, '    ssl = yes', '  }',
    '}',
    'service auth {', '  unix_listener auth-client {', '    mode = 0666', '  }', '}',
    ...o.settings,
    '',
  ];
  const file = path.join(dir, 'dovecot.conf');
  await fsp.writeFile(file, conf.join('\n'));
  const started = startChild('/usr/sbin/dovecot', ['-F', '-c', file], path.join(dir, 'dovecot.out'));
  const child = started.child;
  const output = () => `${started.output()}${readTail(path.join(dir, 'dovecot.log'))}`;
  try {
    await waitListening('dovecot', o.address, Object.values(o.ports), child, output);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { dir, output, authSocket: path.join(run, 'auth-client'), stop: () => stopChild(child) };
}
