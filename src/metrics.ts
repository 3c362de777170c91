// Prometheus metrics (prom-client), one registry per gateway instance so tests can run several.
import http from 'node:http';
import client from 'prom-client';

export function createMetrics() {
  const registry = new client.Registry();
  /** Where gauges read their values at scrape time; the gateway fills these in. */
  const sources = { queueSize: () => 0, dns: (): Record<string, number> => ({}) };
  const m = {
    registry,
    connections: new client.Counter({ name: 'portcullis_smtp_connections_total', help: 'SMTP connections accepted', labelNames: ['listener'], registers: [registry] }),
    sessions: new client.Gauge({ name: 'portcullis_smtp_sessions', help: 'SMTP sessions open now', labelNames: ['listener'], registers: [registry] }),
    replies: new client.Counter({ name: 'portcullis_smtp_replies_total', help: 'SMTP replies sent, by code', labelNames: ['listener', 'code'], registers: [registry] }),
    messages: new client.Counter({ name: 'portcullis_messages_total', help: 'Messages at end of DATA, by outcome', labelNames: ['outcome'], registers: [registry] }),
    symbols: new client.Counter({ name: 'portcullis_symbols_total', help: 'Symbols emitted by checks', labelNames: ['symbol'], registers: [registry] }),
    deliveries: new client.Counter({ name: 'portcullis_deliveries_total', help: 'Recipient deliveries, by transport and outcome', labelNames: ['transport', 'outcome'], registers: [registry] }),
    deliverySeconds: new client.Histogram({ name: 'portcullis_delivery_seconds', help: 'Time of one delivery attempt', labelNames: ['transport'], buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60], registers: [registry] }),
    undeliverable: new client.Counter({ name: 'portcullis_undeliverable_total', help: 'Recipients given up on (recorded, never bounced to unauthenticated senders)', registers: [registry] }),
    sources,
    queueSize: new client.Gauge({
      name: 'portcullis_queue_messages', help: 'Messages in the queue', registers: [registry],
      collect() {
        this.set(sources.queueSize());
      },
    }),
    protocolViolations: new client.Counter({ name: 'portcullis_protocol_violations_total', help: 'Hostile or broken protocol use: starttls_injection, bare_newline, pipelining, line_too_long', labelNames: ['kind'], registers: [registry] }),
    authBlocks: new client.Counter({ name: 'portcullis_auth_blocks_total', help: 'Brute-force blocks imposed, by scope (pair, ip, net)', labelNames: ['scope'], registers: [registry] }),
    authSpraying: new client.Counter({ name: 'portcullis_auth_spraying_alerts_total', help: 'Password-spraying alerts, by kind', labelNames: ['kind'], registers: [registry] }),
    authFailures: new client.Counter({ name: 'portcullis_auth_failures_total', help: 'Failed SMTP AUTH attempts', labelNames: ['listener'], registers: [registry] }),
    limited: new client.Counter({ name: 'portcullis_client_limited_total', help: 'Clients held back: connection, messages, recipients (rate limits), early_talker', labelNames: ['limit'], registers: [registry] }),
    dns: new client.Gauge({
      name: 'portcullis_dns', help: 'Resolver counters since start (queries, cacheHits, zoneAnswers, errors, overloaded) and now (inflight, cached)',
      labelNames: ['kind'], registers: [registry],
      collect() {
        for (const [kind, v] of Object.entries(sources.dns())) this.set({ kind }, v);
      },
    }),
    reports: new client.Counter({ name: 'portcullis_reports_received_total', help: 'Reports read at the report addresses, by kind (complaint, dmarc, tlsrpt, unparsed)', labelNames: ['kind'], registers: [registry] }),
    avScans: new client.Counter({ name: 'portcullis_av_scans_total', help: 'clamd scans, by result (clean, virus, too-large, error, unavailable)', labelNames: ['result'], registers: [registry] }),
    avScanSeconds: new client.Histogram({ name: 'portcullis_av_scan_seconds', help: 'Time of one clamd scan', buckets: [0.005, 0.02, 0.1, 0.5, 2, 10, 30], registers: [registry] }),
    avViruses: new client.Counter({ name: 'portcullis_av_viruses_total', help: 'Messages refused for a virus (signatures are in the log)', registers: [registry] }),
    avUnavailable: new client.Counter({ name: 'portcullis_av_unavailable_total', help: 'Scans that could not be made: clamd down, failing or too slow', registers: [registry] }),
    archiveFindings: new client.Counter({ name: 'portcullis_archive_findings_total', help: 'Archive findings, by symbol', labelNames: ['symbol'], registers: [registry] }),
    wouldReject: new client.Counter({ name: 'portcullis_would_reject_total', help: 'Observe mode: refusals not sent (logged "would reject" with the reply), by stage and symbol', labelNames: ['stage', 'symbol'], registers: [registry] }),
    scanRequests: new client.Counter({ name: 'portcullis_scan_requests_total', help: 'Requests to the scan listeners (spamd, scan-http) and messages judged by milter listeners, by listener, kind (scan, learn, milter) and outcome (the action; the learn result; error)', labelNames: ['listener', 'kind', 'outcome'], registers: [registry] }),
    policyRequests: new client.Counter({ name: 'portcullis_policy_requests_total', help: 'Requests to the policy listeners (Postfix policy, Dovecot auth policy), by listener, kind (the Postfix protocol_state; allow, report) and outcome (dunno, prepend, reject, defer, malformed; accept, delay, reject, success, failure)', labelNames: ['listener', 'kind', 'outcome'], registers: [registry] }),
    checkFailures: new client.Counter({ name: 'portcullis_check_failures_total', help: 'Checks that failed or timed out', labelNames: ['check'], registers: [registry] }),
  };
  client.collectDefaultMetrics({ register: registry, prefix: 'portcullis_' });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

export function serveMetrics(metrics: Metrics, address: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}
