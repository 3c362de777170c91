// The probes against scripted servers doing what real ones rarely do on demand: nothing at all,
// garbage, endless lines, hanging mid-dialogue, hanging up, accepting any login. Each yields a
// finding within its time limits; nothing throws, nothing hangs. Also: what the probes send —
// never a credential after a 334, never DATA, always QUIT/LOGOUT.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startDnsServer, type DnsServer } from '../../test/helpers/dns-server.js';
import { freePorts } from '../../test/helpers/wait.js';
import { createResolver } from '../dns/resolver.js';
import { runAudit } from './audit.js';
import { probeImap } from './imap-probe.js';
import { probePop3 } from './pop3-probe.js';
import type { Endpoint, ProbeContext } from './probe-context.js';
import { probeRelay } from './relay-probe.js';
import { RELAY_FORMS } from './relay-forms.js';
import { serviceSpec, type ServiceName } from './services.js';
import { probeSmtp } from './smtp-probe.js';

type Handler = (line: string, reply: (text: string) => void, close: () => void, state: Record<string, number>) => void;

interface Scripted {
  readonly port: number;
  /** Every line received, per connection. */
  readonly sessions: string[][];
  close(): Promise<void>;
}

/** A line-based server: `greeting` on connect (raw bytes, or nothing), then `handler` per line. */
async function scripted(greeting: string | undefined, handler: Handler = () => {}): Promise<Scripted> {
  const sessions: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const lines: string[] = [];
    const state: Record<string, number> = {};
    sessions.push(lines);
    if (greeting !== undefined) s.write(greeting);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        lines.push(line);
        handler(line, (text) => s.write(text), () => s.end(), state);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const ctx: ProbeContext = {
  connectTimeoutMs: 1000, replyTimeoutMs: 400, heloName: 'audit.example.net', domain: 'scripted.test', relayDomain: 'example.com', now: Date.now,
};

const endpoint = (port: number, service: ServiceName = 'smtp'): Endpoint => ({ host: 'mx.scripted.test', address: '127.0.0.1', port, service: serviceSpec(service) });

/** An SMTP server with AUTH PLAIN before TLS and no STARTTLS, accepting every recipient. */
const openSmtp: Handler = (line, reply, close) => {
  const cmd = line.toUpperCase();
  if (cmd.startsWith('EHLO')) reply('250-scripted.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n');
  else if (cmd.startsWith('AUTH')) reply('334 \r\n');
  else if (line === '*') reply('501 5.7.0 Authentication aborted\r\n');
  else if (cmd === 'QUIT') {
    reply('221 2.0.0 Bye\r\n');
    close();
  } else reply('250 2.0.0 Ok\r\n');
};

describe('audit probes against scripted servers', () => {
  const servers: Scripted[] = [];
  const serve = async (greeting: string | undefined, handler?: Handler) => {
    const s = await scripted(greeting, handler);
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const s of servers) await s.close();
  });

  test('nothing listens: a finding, at once', async () => {
    const [port] = await freePorts(1);
    const r = await probeSmtp(endpoint(port!), ctx);
    assert.equal(r.facts.reachable, false);
    assert.deepEqual(r.findings.map((f) => [f.code, f.severity]), [['SERVICE_CLOSED', 'warning']]);
    const imap = await probeImap(endpoint(port!, 'imap'), ctx);
    assert.deepEqual(imap.findings.map((f) => [f.code, f.severity]), [['SERVICE_CLOSED', 'info']]);
  });

  test('a server that never speaks: SERVICE_SILENT after the reply timeout', async () => {
    const s = await serve(undefined);
    const started = Date.now();
    const r = await probeSmtp(endpoint(s.port), ctx);
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(r.findings.map((f) => f.code), ['SERVICE_SILENT']);
    assert.match(r.findings[0]!.evidence, /no answer within 0\.4 s/);
  });

  test('garbage instead of SMTP, and a line without end', async () => {
    const http = await serve('HTTP/1.1 400 Bad Request\r\n\r\n');
    const r = await probeSmtp(endpoint(http.port), ctx);
    assert.deepEqual(r.findings.map((f) => f.code), ['PROTOCOL_GARBAGE']);
    assert.match(r.findings[0]!.evidence, /HTTP\/1\.1 400/);
    const endless = await serve('220 '.padEnd(100_000, 'x'));
    const e = await probePop3(endpoint(endless.port, 'pop3'), ctx);
    assert.deepEqual(e.findings.map((f) => f.code), ['PROTOCOL_GARBAGE']);
    assert.match(e.findings[0]!.evidence, /longer than 8192/);
  });

  test('a server that hangs up in mid-dialogue', async () => {
    const s = await serve('220 scripted.test ESMTP\r\n', (_line, _reply, close) => close());
    const r = await probeSmtp(endpoint(s.port), ctx);
    assert.deepEqual(r.findings.map((f) => f.code), ['SERVICE_HUNG_UP']);
  });

  test('AUTH before TLS: found, cancelled with "*", no credential sent, QUIT at the end', async () => {
    const s = await serve('220 scripted.test ESMTP\r\n', openSmtp);
    const r = await probeSmtp(endpoint(s.port), ctx);
    assert.deepEqual(r.findings.map((f) => [f.code, f.severity]).sort(), [['SMTP_AUTH_BEFORE_TLS', 'critical'], ['SMTP_NO_STARTTLS', 'warning']]);
    assert.deepEqual(s.sessions[0], ['EHLO audit.example.net', 'AUTH PLAIN', '*', 'QUIT']);
  });

  test('the relay battery stops at RCPT, resets, never sends DATA, and survives a server that hangs up every 3 RCPTs', async () => {
    const s = await serve('220 scripted.test ESMTP\r\n', (line, reply, close, state) => {
      if (/^RCPT/i.test(line)) {
        state.rcpt = (state.rcpt ?? 0) + 1;
        if (state.rcpt >= 3) {
          reply('421 4.7.0 too many recipients, goodbye\r\n');
          close();
          return;
        }
        reply('250 2.1.5 Ok\r\n');
        return;
      }
      openSmtp(line, reply, close, state);
    });
    const { results, findings } = await probeRelay(endpoint(s.port), ctx, 'scripted.test');
    assert.equal(results.length, RELAY_FORMS.length);
    assert.deepEqual(results.filter((x) => x.verdict === 'untested'), []);
    assert.equal(findings[0]!.code, 'RELAY_OPEN');
    assert.equal(findings[0]!.severity, 'critical');
    const all = s.sessions.flat();
    assert.ok(!all.some((l) => /^(DATA|BDAT)\b/i.test(l)), 'DATA was sent');
    // Each form reached RCPT; those cut off by the 421 were tried again in the next session, once.
    const rcpts = all.filter((l) => /^RCPT TO:/i.test(l));
    for (const r of results) assert.ok(rcpts.includes(`RCPT TO:<${r.rcptTo}>`), r.rcptTo);
    const cutOff = s.sessions.filter((x) => /^RCPT/i.test(x.at(-1) ?? '')).length;
    assert.equal(rcpts.length, RELAY_FORMS.length + cutOff);
    for (const session of s.sessions) {
      const last = session.at(-1);
      assert.ok(last === 'QUIT' || /^RCPT/i.test(last ?? ''), `a session ended with ${last}`);
    }
    // Every accepted transaction was reset before the next MAIL.
    const mails = all.filter((l) => /^MAIL FROM:/i.test(l)).length;
    assert.ok(all.filter((l) => l === 'RSET').length >= mails - s.sessions.length);
  });

  test('IMAP that accepts a made-up login; POP3 that refuses USER for lack of TLS', async () => {
    const imap = await serve('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n', (line, reply) => {
      const [tag, cmd] = line.split(' ');
      if (cmd === 'LOGIN') reply(`${tag} OK Logged in\r\n`);
      else if (cmd === 'LOGOUT') reply(`* BYE\r\n${tag} OK bye\r\n`);
      else reply(`${tag} BAD what\r\n`);
    });
    const i = await probeImap(endpoint(imap.port, 'imap'), ctx);
    assert.deepEqual(i.findings.map((f) => f.code).sort(), ['IMAP_ACCEPTS_ANY_LOGIN', 'IMAP_NO_STARTTLS']);
    const login = imap.sessions[0]!.find((l) => l.startsWith('b LOGIN'))!;
    assert.match(login, /^b LOGIN "portcullis-audit-[0-9a-f]{12}@audit\.invalid" "not-a-password-[0-9a-f]{24}"$/);
    assert.equal(imap.sessions[0]!.at(-1), 'z LOGOUT');

    const pop = await serve('+OK ready\r\n', (line, reply) => {
      if (line === 'CAPA') reply('+OK\r\nUSER\r\nSTLS\r\n.\r\n');
      else if (line.startsWith('USER')) reply('-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n');
      else if (line === 'QUIT') reply('+OK bye\r\n');
      else reply('-ERR what\r\n');
    });
    const p = await probePop3(endpoint(pop.port, 'pop3'), ctx);
    assert.deepEqual(p.findings.map((f) => f.code).sort(), ['POP3_NO_PLAINTEXT_LOGIN', 'POP3_STLS']);
    assert.ok(!pop.sessions[0]!.some((l) => l.startsWith('PASS')), 'no PASS after a refused USER');
  });
});

describe('runAudit end to end on scripted servers', () => {
  let dns: DnsServer;
  const servers: Scripted[] = [];
  before(async () => {
    dns = await startDnsServer({
      'scripted.test': [{ type: 'MX', data: { priority: 10, exchange: 'mx.scripted.test' } }],
      'mx.scripted.test': [{ type: 'A', data: '127.0.0.1' }],
      'null.test': [{ type: 'MX', data: { priority: 0, exchange: '.' } }],
      'nomx.test': [{ type: 'A', data: '127.0.0.1' }],
    });
  });
  after(async () => {
    for (const s of servers) await s.close();
    await dns.close();
  });
  const resolver = () => createResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1, maxInflight: 100, cacheEntries: 0, maxTtlMs: 1000, negativeTtlMs: 1000 });

  test('a domain that does not exist: a critical finding, no probe, exit status 4', async () => {
    const r = await runAudit({ domain: 'missing.test', resolver: resolver(), ports: { smtp: 1 } });
    assert.equal(r.findings.filter((f) => f.code === 'DOMAIN_MISSING').length, 1);
    assert.deepEqual(r.services, []);
    assert.equal(r.exitStatus, 4);
  });

  test('a null MX and a domain without MX', async () => {
    const nullMx = await runAudit({ domain: 'null.test', resolver: resolver(), ports: { smtp: 1 } });
    assert.deepEqual(nullMx.targets, []);
    assert.ok(nullMx.findings.some((f) => f.code === 'MX_NULL'));
    const [port] = await freePorts(1);
    const noMx = await runAudit({ domain: 'nomx.test', resolver: resolver(), ports: { smtp: port! }, connectTimeoutMs: 500 });
    assert.deepEqual(noMx.targets.map((t) => [t.host, t.source]), [['nomx.test', 'implicit-mx']]);
    assert.ok(noMx.findings.some((f) => f.code === 'MX_MISSING'));
    assert.ok(noMx.findings.some((f) => f.code === 'SERVICE_CLOSED'));
  });

  test('a server that hangs after EHLO: the probe budget ends it, with a finding', async () => {
    const s = await scripted('220 scripted.test ESMTP\r\n', () => {});
    servers.push(s);
    const started = Date.now();
    const r = await runAudit({ domain: 'scripted.test', resolver: resolver(), ports: { smtp: s.port }, replyTimeoutMs: 30_000, probeTimeoutMs: 1000 });
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.ok(r.findings.some((f) => f.code === 'PROBE_TIMEOUT'), r.findings.map((f) => f.code).join(' '));
  });

  test('the relay domain is never looked up, and only the MX host is contacted', async () => {
    const s = await scripted('220 scripted.test ESMTP\r\n', openSmtp);
    servers.push(s);
    dns.queries.length = 0;
    const progress: string[] = [];
    const r = await runAudit({ domain: 'scripted.test', resolver: resolver(), ports: { smtp: s.port }, replyTimeoutMs: 2000, rate: 1000, onProgress: (p) => progress.push(`${p.done}/${p.total}`) });
    assert.ok(r.findings.some((f) => f.code === 'RELAY_OPEN'));
    assert.ok(!dns.queries.some((q) => /example\.com/i.test(q)), dns.queries.join('\n'));
    assert.deepEqual(r.targets.map((t) => t.host), ['mx.scripted.test']);
    assert.equal(progress.at(-1), `${progress.length}/${progress.length}`);
  });
});
