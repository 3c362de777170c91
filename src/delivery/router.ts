// Sends each queued recipient to its delivery agent: a Maildir for local mailboxes, the relay
// route of its domain (one SMTP/LMTP transaction for all recipients of a route), else the
// domain's own MX hosts (direct delivery, mx-delivery.ts: one transaction per domain).
import { MaildirDelivery } from './maildir.js';
import type { RelayDelivery } from './relay.js';
import type { MxDelivery } from './mx-delivery.js';
import type { Content, RecipientOutcome } from './types.js';
import type { Deliverer, QueuedMessage, QueuedRecipient } from '../queue/queue.js';
import type { RouteConfig } from './config.js';
import type { Metrics } from '../metrics.js';

export interface RouterDeps {
  readonly maildir: MaildirDelivery;
  readonly relay: RelayDelivery;
  readonly mailboxDir: (address: string) => string;
  readonly route: (domain: string) => RouteConfig | undefined;
  /** Direct delivery for domains without a route (outbound.delivery); absent: they defer. */
  readonly mx?: MxDelivery;
  readonly metrics: Metrics;
  /** DKIM signing / ARC sealing of mail leaving for a remote destination (src/delivery/dkim/outbound.ts). */
  readonly sign?: (msg: QueuedMessage, content: Content) => Promise<Content | undefined>;
  /** Told of each local delivery and of each message leaving (src/reports/intake.ts: reports in, attribution). */
  readonly observe?: {
    delivered(msg: QueuedMessage, address: string, content: Content): void;
    leaving(msg: QueuedMessage, content: Content): void;
  };
}

export class DeliveryRouter implements Deliverer {
  constructor(private readonly deps: RouterDeps) {}

  async deliver(msg: QueuedMessage, recipients: QueuedRecipient[], content: Content): Promise<RecipientOutcome[]> {
    const outcomes: RecipientOutcome[] = new Array(recipients.length);
    const jobs: Promise<void>[] = [];
    const byRoute = new Map<string, { route: RouteConfig; index: number[] }>();
    const byDomain = new Map<string, number[]>();
    recipients.forEach((r, k) => {
      const d = r.destination;
      if (d.kind === 'local') {
        jobs.push(this.local(d.mailbox, d.folder, content).then((o) => {
          outcomes[k] = o;
          if (o.status === 'delivered') this.deps.observe?.delivered(msg, r.address, content);
        }));
        return;
      }
      const route = this.deps.route(d.domain);
      if (!route) {
        if (this.deps.mx) byDomain.set(d.domain, [...(byDomain.get(d.domain) ?? []), k]);
        else outcomes[k] = { status: 'deferred', reply: `no route to ${d.domain} (relay.routes)` };
        return;
      }
      const key = `${route.host}:${route.port}:${route.protocol}:${route.tls}`;
      const group = byRoute.get(key) ?? { route, index: [] };
      group.index.push(k);
      byRoute.set(key, group);
    });
    if (recipients.some((r) => r.destination.kind !== 'local')) {
      this.deps.observe?.leaving(msg, content);
      content = (await this.deps.sign?.(msg, content)) ?? content;
    }
    for (const { route, index } of byRoute.values()) {
      const started = process.hrtime.bigint();
      jobs.push(
        this.deps.relay.deliver(route, { from: msg.sender, to: index.map((k) => recipients[k]!.address) }, content).then((res) => {
          this.deps.metrics.deliverySeconds.observe({ transport: route.protocol }, Number(process.hrtime.bigint() - started) / 1e9);
          index.forEach((k, j) => {
            const o = res[j] ?? { status: 'deferred' as const, reply: 'no outcome from relay' };
            outcomes[k] = o;
            this.deps.metrics.deliveries.inc({ transport: route.protocol, outcome: o.status });
          });
        }),
      );
    }
    for (const [domain, index] of byDomain) {
      const started = process.hrtime.bigint();
      jobs.push(
        this.deps.mx!.deliver(domain, { from: msg.sender, to: index.map((k) => recipients[k]!.address) }, content).then((res) => {
          this.deps.metrics.deliverySeconds.observe({ transport: 'mx' }, Number(process.hrtime.bigint() - started) / 1e9);
          index.forEach((k, j) => {
            const o = res[j] ?? { status: 'deferred' as const, reply: 'no outcome from MX delivery' };
            outcomes[k] = o;
            this.deps.metrics.deliveries.inc({ transport: 'mx', outcome: o.status });
          });
        }),
      );
    }
    await Promise.all(jobs);
    return outcomes;
  }

  private async local(mailbox: string, folder: 'INBOX' | 'Junk', content: Content): Promise<RecipientOutcome> {
    const started = process.hrtime.bigint();
    try {
      const name = await this.deps.maildir.deliver(this.deps.mailboxDir(mailbox), folder, content);
      this.deps.metrics.deliveries.inc({ transport: 'maildir', outcome: 'delivered' });
      this.deps.metrics.deliverySeconds.observe({ transport: 'maildir' }, Number(process.hrtime.bigint() - started) / 1e9);
      return { status: 'delivered', reply: `delivered to maildir ${folder} as ${name}` };
    } catch (err) {
      const temporary = (err as { temporary?: boolean }).temporary !== false;
      this.deps.metrics.deliveries.inc({ transport: 'maildir', outcome: temporary ? 'deferred' : 'failed' });
      return { status: temporary ? 'deferred' : 'failed', reply: `maildir: ${(err as Error).message}` };
    }
  }
}
