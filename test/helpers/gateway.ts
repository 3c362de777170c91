// Starts the real gateway (`node dist/src/cli/main.js serve --config FILE`) as a child process in
// a fresh temporary directory, on free loopback ports, and runs its CLI against the same config.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { cliEntry, repoRoot } from './paths.js';
import { freePorts, sleep, tcpAccepts, waitFor } from './wait.js';

export type ConfigObject = { [k: string]: Json | undefined };
export type Json = null | boolean | number | string | Json[] | ConfigObject;

export interface GatewayPorts {
  mx: number;
  submission: number;
  submissions: number;
  /** Mailbox access (STARTTLS and implicit TLS). */
  pop3: number;
  pop3s: number;
  imap: number;
  imaps: number;
}

export interface GatewayOptions {
  /**
   * Changes to the base configuration (see baseConfig), merged key by key; arrays replace.
   * A function gets the chosen ports and directories first.
   */
  config?: ConfigObject | ((ctx: { ports: GatewayPorts; dataDir: string; tmpDir: string }) => ConfigObject);
  /** Accounts created with `user add ADDR --password-stdin` before the server starts. */
  users?: Record<string, string>;
  /** Aliases created with `alias add ADDR TARGET...` before the server starts. */
  aliases?: Record<string, string[]>;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for every listener to accept TCP (default 30 s). */
  startTimeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The gateway's hostname in every test configuration. */
export const HOSTNAME = 'mx.example.test';
/** Local domains in every test configuration; the first one holds the roles mailbox by default. */
export const LOCAL_DOMAINS = ['example.test', 'second.test'];

/** The SMTP listeners of every test gateway; a test that adds listeners of other kinds lists these first. */
export function smtpListeners(ports: GatewayPorts): ConfigObject[] {
  return [
    { name: 'mx', kind: 'mx', address: '127.0.0.1', port: ports.mx },
    { name: 'submission', kind: 'submission', address: '127.0.0.1', port: ports.submission },
    { name: 'submissions', kind: 'submissions', address: '127.0.0.1', port: ports.submissions },
  ];
}

/** The configuration every test gateway starts from. */
export function baseConfig(ports: GatewayPorts, dataDir: string): ConfigObject {
  return {
    hostname: HOSTNAME,
    data_dir: dataDir,
    domains: [...LOCAL_DOMAINS],
    listeners: smtpListeners(ports),
    imap: {
      listeners: [
        { name: 'imap', address: '127.0.0.1', port: ports.imap, tls: 'starttls' },
        { name: 'imaps', address: '127.0.0.1', port: ports.imaps, tls: 'implicit' },
      ],
    },
    pop3: {
      listeners: [
        { name: 'pop3', address: '127.0.0.1', port: ports.pop3, tls: 'starttls' },
        { name: 'pop3s', address: '127.0.0.1', port: ports.pop3s, tls: 'implicit' },
      ],
    },
    tls: { self_signed: true },
    metrics: { enabled: false },
    // The console's fixed port (8443) would clash between gateways; its tests turn it on (test/web/).
    console: { enabled: false },
    // A closed loopback port: every DNS question fails at once (ICMP unreachable), so tests that
    // do not start a DNS server of their own never wait on the machine's resolver.
    dns: { servers: ['127.0.0.1:1'] },
    // No greeting delay: tests connect from new addresses all the time (the delay has its own tests).
    greeting: { delay: '0s' },
    log: { level: 'debug' },
    shutdown_grace: '5s',
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `over` into `base` key by key; arrays and scalars replace; undefined deletes. */
export function mergeConfig(base: ConfigObject, over: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete out[k];
    else if (isPlainObject(v) && isPlainObject(out[k])) out[k] = mergeConfig(out[k] as ConfigObject, v as ConfigObject);
    else out[k] = v;
  }
  return out;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs `node dist/src/cli/main.js ARGS` in the repository root. */
export function runCli(
  args: string[],
  { stdin, env, timeoutMs = 30_000 }: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portcullis ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    if (stdin !== undefined) child.stdin.end(stdin);
    else child.stdin.end();
  });
}

/** Describes a CLI result for assertion messages. */
export function showCli(args: string[], r: CliResult): string {
  return `portcullis ${args.join(' ')} → exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export class Gateway {
  readonly logs: Array<Record<string, unknown>> = [];
  /** Everything the server printed (stdout and stderr, in arrival order). */
  output = '';
  private child?: ChildProcess;
  /** The server process id (for reading its memory from /proc). */
  get pid(): number | undefined {
    return this.child?.pid;
  }
  private exitInfo?: { code: number | null; signal: NodeJS.Signals | null };
  private exited?: Promise<void>;

  constructor(
    readonly tmpDir: string,
    readonly dataDir: string,
    readonly configFile: string,
    readonly ports: GatewayPorts,
    readonly config: ConfigObject,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  get hostname(): string {
    return String(this.config.hostname);
  }

  /** Runs a CLI command with `--config FILE` appended. */
  async cli(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    return runCli([...args, '--config', this.configFile], { ...opts, env: this.env });
  }

  /** Like cli(), but throws (with the output) unless the command exits 0. */
  async cliOk(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CliResult> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`CLI command failed: ${showCli([...args, '--config', this.configFile], r)}`);
    return r;
  }

  async addUser(address: string, password: string): Promise<void> {
    await this.cliOk(['user', 'add', address, '--password-stdin'], { stdin: `${password}\n` });
  }

  /** Starts `serve` and waits until every listener accepts TCP. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.child && !this.exitInfo) throw new Error('gateway already running');
    this.exitInfo = undefined;
    const child = spawn(process.execPath, [cliEntry, 'serve', '--config', this.configFile], {
      cwd: repoRoot,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    const logFile = fs.createWriteStream(path.join(this.tmpDir, 'gateway.log'), { flags: 'a' });
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
      logFile.write(d);
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          this.logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.logs.push({ msg: line, unparsed: true });
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
      logFile.write(d);
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        running.delete(child);
        logFile.end();
        resolve();
      });
    });
    const ports = Object.values(this.ports);
    try {
      await waitFor(
        `the gateway to accept TCP on ports ${ports.join(', ')}`,
        async () => {
          if (this.exitInfo) {
            throw new Error(`gateway exited early (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})`);
          }
          for (const p of ports) if (!(await tcpAccepts(p))) return false;
          return true;
        },
        { timeoutMs, intervalMs: 150, details: () => this.tail() },
      );
    } catch (err) {
      const info = this.exit;
      if (info) {
        throw new Error(`the gateway exited before listening (code ${info.code}, signal ${info.signal})\n${this.tail()}`);
      }
      await this.kill();
      throw err;
    }
  }

  get running(): boolean {
    return Boolean(this.child) && !this.exitInfo;
  }

  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exitInfo;
  }

  /** SIGTERM, then wait for the process to exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    if (!this.child || this.exitInfo) return this.exitInfo;
    this.child.kill('SIGTERM');
    const done = await Promise.race([this.exited!.then(() => true), sleep(timeoutMs).then(() => false)]);
    if (!done) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`gateway did not exit within ${timeoutMs} ms of SIGTERM\n${this.tail()}`);
    }
    return this.exitInfo;
  }

  /** SIGKILL, then wait for the exit. */
  async kill(): Promise<void> {
    if (!this.child || this.exitInfo) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Stops the server and removes the temporary directory (kept when KEEP_TEST_TMP=1). */
  async cleanup(): Promise<void> {
    try {
      await this.stop();
    } catch {
      await this.kill();
    }
    if (process.env.KEEP_TEST_TMP === '1') {
      process.stderr.write(`# kept gateway directory ${this.tmpDir}\n`);
      return;
    }
    await fsp.rm(this.tmpDir, { recursive: true, force: true });
  }

  /** The last lines the server printed, for failure messages. */
  tail(lines = 40): string {
    const all = this.output.split('\n');
    return `--- last gateway output (${this.tmpDir})\n${all.slice(-lines).join('\n')}`;
  }

  /** `<data_dir>/mail/<domain>/<local>` for an address. */
  mailboxDir(address: string): string {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at).toLowerCase();
    const domain = address.slice(at + 1).toLowerCase();
    return path.join(this.dataDir, 'mail', domain, local);
  }

  /** The messages in `<mailbox>/new/` (and cur/), oldest name first. */
  readMailbox(address: string): Array<{ file: string; content: Buffer }> {
    const out: Array<{ file: string; content: Buffer }> = [];
    for (const sub of ['new', 'cur']) {
      const dir = path.join(this.mailboxDir(address), sub);
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        const file = path.join(dir, name);
        try {
          out.push({ file, content: fs.readFileSync(file) });
        } catch {
          // moved away meanwhile
        }
      }
    }
    return out;
  }

  /** Every message file anywhere under <data_dir>/mail (any mailbox, any folder). */
  allMailboxFiles(): Array<{ file: string; content: Buffer }> {
    const out: Array<{ file: string; content: Buffer }> = [];
    const root = path.join(this.dataDir, 'mail');
    const walk = (dir: string) => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile() && /[/\\](new|cur)$/.test(dir)) out.push({ file: p, content: fs.readFileSync(p) });
      }
    };
    walk(root);
    return out;
  }

  /** Waits until a message in the mailbox contains `marker`; returns its content. */
  async waitForMail(address: string, marker: string, timeoutMs = 15_000): Promise<Buffer> {
    const found = await waitFor(
      `a message containing ${JSON.stringify(marker)} in ${this.mailboxDir(address)}/new`,
      () => this.readMailbox(address).find((m) => m.content.includes(marker))?.content,
      { timeoutMs, details: () => this.tail(20) },
    );
    return found;
  }

  /** `queue list --json`, parsed. */
  async queueList(): Promise<QueueEntry[]> {
    const r = await this.cliOk(['queue', 'list', '--json']);
    try {
      return JSON.parse(r.stdout) as QueueEntry[];
    } catch (err) {
      throw new Error(`queue list --json printed something that is not JSON: ${(err as Error).message}\n${r.stdout}`);
    }
  }
}

export interface QueueEntry {
  id: string;
  sender: string;
  recipients: Array<{ address: string; status: string; attempts: number; last_reply?: string | null }>;
  size: number;
  arrived: string | number;
}

/** Creates the temporary directory, the config file, the users and aliases, and starts `serve`. */
export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  // freePorts() releases its ports before `serve` binds them, so a test process running beside
  // this one can take one in between; such a start is retried on fresh ports.
  for (let attempt = 1; ; attempt++) {
    const gw = await prepareGateway(opts);
    try {
      await gw.start(opts.startTimeoutMs);
      return gw;
    } catch (err) {
      await gw.cleanup();
      if (attempt >= 3 || !/cannot listen on .*EADDRINUSE/.test(gw.output)) throw err;
    }
  }
}

/** Like startGateway, without starting `serve` (for CLI-only tests, or to start it later). */
export async function prepareGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'portcullis-e2e-'));
  const dataDir = path.join(tmpDir, 'data');
  await fsp.mkdir(dataDir, { recursive: true });
  const [mx, submission, submissions, pop3, pop3s, imap, imaps] = await freePorts(7);
  const ports: GatewayPorts = { mx: mx!, submission: submission!, submissions: submissions!, pop3: pop3!, pop3s: pop3s!, imap: imap!, imaps: imaps! };
  const over = typeof opts.config === 'function' ? opts.config({ ports, dataDir, tmpDir }) : opts.config ?? {};
  const config = mergeConfig(baseConfig(ports, dataDir), over);
  const configFile = path.join(tmpDir, 'portcullis.yaml');
  await fsp.writeFile(configFile, YAML.stringify(config));
  const gw = new Gateway(tmpDir, dataDir, configFile, ports, config, opts.env);
  try {
    for (const [address, password] of Object.entries(opts.users ?? {})) await gw.addUser(address, password);
    for (const [address, targets] of Object.entries(opts.aliases ?? {})) await gw.cliOk(['alias', 'add', address, ...targets]);
  } catch (err) {
    await gw.cleanup();
    throw err;
  }
  return gw;
}
