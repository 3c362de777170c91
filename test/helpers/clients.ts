// The real clients the end-to-end tests drive: swaks (Debian package), Python's smtplib
// (test/clients/smtp_probe.py) and nodemailer. A missing tool skips a test on a developer's
// machine and fails it in CI (CI=true): nothing is skipped silently there.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import nodemailer from 'nodemailer';
import { clientsDir } from './paths.js';

export const strict = process.env.CI === 'true' || process.env.PORTCULLIS_TEST_STRICT === '1';

const toolCache = new Map<string, string | undefined>();

/** Why a tool cannot be used, or undefined when it can. */
export function toolProblem(tool: 'swaks' | 'python3'): string | undefined {
  if (toolCache.has(tool)) return toolCache.get(tool);
  let problem: string | undefined;
  if (tool === 'swaks') {
    const r = spawnSync('swaks', ['--support'], { encoding: 'utf8' });
    if (r.error) problem = 'swaks is not installed (Debian package swaks; scripts/test.sh installs it)';
    else if (!/=== TLS supported/.test(`${r.stdout}${r.stderr}`)) problem = 'swaks cannot do TLS (install libnet-ssleay-perl)';
  } else {
    const r = spawnSync('python3', ['-c', 'import smtplib, ssl, json'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) problem = `python3 with smtplib and ssl is not available: ${r.error?.message ?? r.stderr}`;
  }
  toolCache.set(tool, problem);
  return problem;
}

/**
 * Call at the start of a test that needs `tool`. Returns false (and skips the test) when the
 * tool is missing on a developer machine; throws in CI so that the run fails loudly.
 */
export function needTool(t: TestContext, tool: 'swaks' | 'python3'): boolean {
  const problem = toolProblem(tool);
  if (!problem) return true;
  if (strict) throw new Error(`required tool missing: ${problem}`);
  t.skip(problem);
  return false;
}

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client program with `stdin` as its input; never throws for a non-zero exit. */
export function runProgram(cmd: string, args: string[], { stdin, timeoutMs = 60_000 }: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(stdin ?? '');
  });
}

// ---------------------------------------------------------------- swaks

export interface SwaksResult extends ProcResult {
  /** Server replies in order, each as "250 2.0.0 Ok" (multi-line replies are one entry per line). */
  serverLines: string[];
  /** Lines the client sent. */
  clientLines: string[];
  /** True when the transcript shows a TLS session (STARTTLS or tls-on-connect). */
  tls: boolean;
  transcript: string;
}

/**
 * Runs swaks against 127.0.0.1:port. `args` are further swaks options (--to, --from, --tls,
 * --auth ...). Transcript prefixes: "<-"/"->" plain, "<~"/"~>" under TLS, "<**"/"<~*" errors.
 */
export async function swaks(port: number, args: string[], timeoutMs = 60_000): Promise<SwaksResult> {
  const r = await runProgram('swaks', ['--server', '127.0.0.1', '--port', String(port), '--timeout', '20s', '--ehlo', 'swaks.example.net', ...args], { timeoutMs });
  const serverLines: string[] = [];
  const clientLines: string[] = [];
  let tls = false;
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(<~\*|<\*\*|<-|<~|->|~>|\*\*\*|===|\*~)\s?(.*)$/.exec(line);
    if (!m) continue;
    const [, prefix, rest] = m;
    if (prefix === '<-' || prefix === '<~' || prefix === '<**' || prefix === '<~*') serverLines.push(rest!.trim());
    if (prefix === '->' || prefix === '~>') clientLines.push(rest!.trim());
    if (prefix === '<~' || prefix === '~>' || prefix === '<~*') tls = true;
  }
  return { ...r, serverLines, clientLines, tls, transcript: `swaks ${args.join(' ')} → exit ${r.code}\n${r.stdout}${r.stderr}` };
}

// ---------------------------------------------------------------- Python smtplib

export interface PyProbeRequest {
  port: number;
  host?: string;
  /** plain: no TLS; starttls: smtplib.starttls(); ssl: smtplib.SMTP_SSL. */
  mode: 'plain' | 'starttls' | 'ssl';
  ehlo?: string;
  /** TLS bounds, as ssl.TLSVersion member names (TLSv1_1, TLSv1_2, TLSv1_3). */
  tls_min?: string;
  tls_max?: string;
  /** Lower the client's OpenSSL security level to 0 so that it can offer TLS 1.0/1.1. */
  tls_seclevel0?: boolean;
  login?: [string, string];
  /** Which AUTH mechanism to force (smtplib.auth with auth_plain / auth_login). */
  auth_mechanism?: 'PLAIN' | 'LOGIN';
  mail_from?: string;
  rcpt_to?: string[];
  /** The message, sent as bytes (CRLF line ends expected). */
  message?: string;
  timeout?: number;
}

export interface PyProbeResult {
  ok: boolean;
  features_before_tls?: Record<string, string>;
  features?: Record<string, string>;
  tls_version?: string | null;
  cipher?: string | null;
  auth_reply?: [number, string];
  refused?: Record<string, [number, string]>;
  /** What failed, when ok is false. */
  error?: { type: string; message: string; smtp_code?: number; smtp_error?: string; stage?: string };
  stage?: string;
  data_reply?: [number, string];
}

/** Runs test/clients/smtp_probe.py with a JSON request; returns its JSON report. */
export async function pyProbe(req: PyProbeRequest): Promise<PyProbeResult & { raw: ProcResult }> {
  const script = path.join(clientsDir, 'smtp_probe.py');
  const r = await runProgram('python3', [script], { stdin: JSON.stringify({ host: '127.0.0.1', timeout: 20, ...req }) });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: PyProbeResult;
  try {
    parsed = JSON.parse(last) as PyProbeResult;
  } catch {
    throw new Error(`smtp_probe.py printed no JSON report (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { ...parsed, raw: r };
}

// ---------------------------------------------------------------- nodemailer

export interface MailerOptions {
  port: number;
  /** Implicit TLS (submissions). */
  secure?: boolean;
  /** Fail unless STARTTLS is used. */
  requireTLS?: boolean;
  /** Never use STARTTLS. */
  ignoreTLS?: boolean;
  auth?: { user: string; pass: string };
}

/** A nodemailer transport against the local gateway, certificate checks off (self-signed). */
export function mailer(opts: MailerOptions) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: opts.port,
    secure: Boolean(opts.secure),
    requireTLS: Boolean(opts.requireTLS),
    ignoreTLS: Boolean(opts.ignoreTLS),
    auth: opts.auth,
    name: 'nodemailer.example.net',
    tls: { rejectUnauthorized: false },
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
  });
}

export type SendOutcome = { ok: true } | { ok: false; code: number; text: string };

/** One raw message over plain SMTP (nodemailer) to `port`; a refusal comes back as its code and text. */
export async function sendRaw(port: number, envelope: { from: string; to: string[] }, raw: string | Buffer): Promise<SendOutcome> {
  const transport = mailer({ port, ignoreTLS: true });
  try {
    await transport.sendMail({ envelope, raw });
    return { ok: true };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string };
    return { ok: false, code: e.responseCode ?? 0, text: e.response ?? String(err) };
  } finally {
    transport.close();
  }
}
