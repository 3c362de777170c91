// `kind: scan-http` listeners: the part of rspamd's HTTP protocol that its clients use
// (https://rspamd.com/doc/developers/protocol.html), so rspamc and Haraka's rspamd plugin are
// judged by our scanner unchanged (docs/integrations.md has what is and is not implemented):
//   POST /checkv2 (and /check, /symbols)  the message in the body; From, Rcpt, IP, Helo, User,
//                                         Deliver-To, Pass headers; a JSON verdict
//   POST /learnspam, /learnham            Bayes learning, with the listener's password in the
//                                         Password header (rspamd's controller password)
//   GET  /ping                            "pong"
// fastify (already the console's server) does the HTTP: body limit, timeouts, framing errors.
import crypto from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { ScanHttpListenerConfig } from '../smtp/config.js';
import type { MessageScan } from '../pipeline/message-scanner.js';
import { allowList, printable, type ScanService } from './service.js';
import { rspamdAction, verdictFields, VERDICT_FIELD_NAMES } from './verdict.js';
import { listenHttp, type RunningListener } from './listen.js';

/** The JSON /checkv2 answers: the fields rspamc and Haraka's rspamd plugin read. */
export interface CheckReply {
  is_skipped: false;
  action: string;
  score: number;
  required_score: number;
  thresholds: Record<string, number>;
  symbols: Record<string, { name: string; score: number; metric_score: number; description: string; options: string[] }>;
  messages: Record<string, string>;
  'message-id'?: string;
  subject?: string;
  milter: { add_headers: Record<string, { value: string; order: number }>; remove_headers: Record<string, number> };
  time_real: number;
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)?.trim() || undefined;
const many = (v: string | string[] | undefined): string[] => (Array.isArray(v) ? v : v ? [v] : []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
/** An address as MTAs pass it: "<a@b>" or "a@b". */
const bare = (a: string) => a.replace(/^<|>$/g, '');

/** Constant-time password check (both sides hashed first, so their lengths always match). */
export function passwordMatches(given: string | undefined, expected: string | undefined): boolean {
  if (!expected || given === undefined) return false;
  const h = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
  return crypto.timingSafeEqual(h(given), h(expected));
}

export function checkReply(scan: MessageScan, service: ScanService, ms: number, messageId?: string, subject?: string): CheckReply {
  const action = rspamdAction(scan, service.subjectTag);
  const symbols: CheckReply['symbols'] = {};
  for (const s of scan.symbols) {
    symbols[s.name] = { name: s.name, score: s.score, metric_score: s.score, description: s.reason, options: s.reason ? [printable(s.reason, 300)] : [] };
  }
  const t = scan.thresholds;
  const addHeaders: CheckReply['milter']['add_headers'] = {};
  // Header values for a milter: one line (the MTA folds if it must).
  for (const [name, value] of verdictFields(scan)) addHeaders[name] = { value: value.replace(/\r\n\t/g, ' '), order: 0 };
  return {
    is_skipped: false,
    action,
    score: scan.score,
    // rspamd's required_score is the reject threshold; ours may be never (a user's reject: never).
    required_score: Number.isFinite(t.reject) ? t.reject : 0,
    thresholds: { 'add header': t.tag, ...(Number.isFinite(t.reject) ? { reject: t.reject } : {}) },
    symbols,
    messages: scan.demand ? { smtp_message: `${scan.demand.reply.code} ${scan.demand.reply.enhanced ?? ''} ${scan.demand.reply.text}`.replace(/\s+/g, ' ') } : {},
    ...(messageId ? { 'message-id': messageId } : {}),
    ...(action === 'rewrite subject' && subject !== undefined ? { subject: `${service.subjectTag} ${subject}` } : {}),
    milter: { add_headers: addHeaders, remove_headers: Object.fromEntries(VERDICT_FIELD_NAMES.map((n) => [n, 0])) },
    time_real: Math.round(ms) / 1000,
  };
}

export async function startScanHttp(listener: ScanHttpListenerConfig, service: ScanService): Promise<RunningListener> {
  const log = service.logger.child({ component: 'scan-http', listener: listener.name });
  const allowed = allowList(listener.allow);
  const app = Fastify({
    logger: false,
    bodyLimit: service.maxMessageSize,
    connectionTimeout: listener.timeout,
    requestTimeout: listener.timeout,
    keepAliveTimeout: 5000,
    trustProxy: false,
    return503OnClosing: true,
  });
  app.server.maxConnections = listener.max_connections;
  // Every body is the message, whatever its type: rspamc sends none or application/octet-stream.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (req, reply) => {
    if (!allowed(req.socket.remoteAddress)) {
      log.warn({ event: 'scan_http_refused', client: req.socket.remoteAddress }, 'request from a network not in allow: refused');
      return reply.code(403).header('connection', 'close').send({ error: 'client address not allowed' });
    }
    // rspamc -z: zstd, which Node 20 cannot inflate; refused by name rather than misread.
    const enc = one(req.headers['compression']) ?? one(req.headers['content-encoding']);
    if (enc && enc !== 'identity') return reply.code(415).send({ error: `compression ${printable(enc, 30)} is not supported: send the message uncompressed` });
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (code === 500) log.error({ event: 'scan_http_error', err: err.message }, 'internal error');
    return reply.code(code).send({ error: code === 500 ? 'internal error' : err.message });
  });

  const ping = async (_req: FastifyRequest, reply: FastifyReply) => reply.type('text/plain').send('pong\r\n');
  app.get('/ping', ping);
  app.post('/ping', ping);

  const check = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!raw.length) return reply.code(400).send({ error: 'no message in the request body' });
    const h = req.headers;
    const rcpts = many(h['rcpt']).map(bare);
    // Whose settings apply: the delivery user (an LDA), else the one recipient.
    const deliverTo = one(h['deliver-to']) ?? (rcpts.length === 1 ? rcpts[0] : undefined);
    const user = deliverTo ? service.userAddress(bare(deliverTo)) : undefined;
    const t0 = performance.now();
    const scan = await service.scanner.scan(raw, {
      sender: one(h['from']) !== undefined ? bare(one(h['from'])!) : undefined, recipients: rcpts, ip: one(h['ip']), helo: one(h['helo']), user,
    });
    const ms = performance.now() - t0;
    const headers = raw.subarray(0, Math.min(raw.length, 64 * 1024)).toString('latin1');
    const field = (name: string) => new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(headers.split(/\r?\n\r?\n/, 1)[0]!)?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim();
    const body = checkReply(scan, service, ms, field('message-id'), field('subject'));
    log.info({
      event: 'scan_http_check', client: req.socket.remoteAddress, from: one(h['from']), rcpt: rcpts.slice(0, 10), user: one(h['user']), applied: user,
      size: raw.length, score: scan.score, action: body.action, ...(scan.wouldReject ? { observe: 'would reject' } : {}), symbols: scan.symbols.map((s) => ({ name: s.name, score: s.score })), ms: Math.round(ms),
    }, `scanned: ${body.action}`);
    service.count?.(listener.name, 'scan', body.action);
    return reply.send(body);
  };
  app.post('/checkv2', check);
  app.post('/check', check);
  app.post('/symbols', check);

  const learn = (cls: 'spam' | 'ham') => async (req: FastifyRequest, reply: FastifyReply) => {
    // As rspamd's controller: learning changes every later verdict, so it needs the password.
    if (!listener.password) return reply.code(403).send({ error: 'learning is off on this listener: set its password' });
    if (!passwordMatches(one(req.headers['password']), listener.password)) {
      log.warn({ event: 'scan_http_learn_refused', client: req.socket.remoteAddress }, 'learn without the right password: refused');
      return reply.code(403).send({ error: 'Unauthorized' });
    }
    if (!service.scanner.canLearn) return reply.code(503).send({ error: 'Bayes is off (bayes.enabled: false)' });
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!raw.length) return reply.code(400).send({ error: 'no message in the request body' });
    const outcome = await service.scanner.learn(raw, cls);
    service.count?.(listener.name, 'learn', outcome);
    log.info({ event: 'scan_http_learn', client: req.socket.remoteAddress, class: cls, outcome }, `learned as ${cls}: ${outcome}`);
    // rspamd answers 208 for a message learned before; rspamc shows the error text.
    if (outcome === 'already') return reply.code(208).send({ error: `the message was already learned as ${cls}` });
    return reply.send({ success: true });
  };
  app.post('/learnspam', learn('spam'));
  app.post('/learnham', learn('ham'));

  return listenHttp(app, listener);
}
