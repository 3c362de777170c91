// Starts the integration entries of `listeners` (each off unless configured) and stops them:
// the scan listeners (`kind: spamd`, `kind: scan-http`) on one shared scanner; the policy
// listeners (`kind: policy`, `kind: dovecot-policy`) on the gateway's runner and brute-force
// defence; `kind: milter` on the SMTP path's own runner (milter/service.ts). A group's service
// is built only when one of its kinds is configured (a site without one pays nothing).
import type { AnyListenerConfig } from '../smtp/config.js';
import type { Logger } from '../log.js';
import type { ScanService } from './service.js';
import type { RunningListener } from './listen.js';
import { startSpamd } from './spamd.js';
import { startScanHttp } from './scan-http.js';
import type { PolicyService } from './policy-service.js';
import { startPostfixPolicy } from './postfix-policy.js';
import { startDovecotPolicy } from './dovecot-policy.js';
import type { MilterService } from './milter/service.js';
import { startMilter } from './milter/listener.js';

export interface ScanListeners {
  addresses(): Record<string, { address: string; port: number }>;
  close(graceMs: number): Promise<void>;
}

type Starters<S> = { [K in AnyListenerConfig['kind']]?: (l: Extract<AnyListenerConfig, { kind: K }>, service: S) => Promise<RunningListener> };

export const startScanListeners = (listeners: readonly AnyListenerConfig[], service: () => ScanService) =>
  startKinds(listeners, { spamd: startSpamd, 'scan-http': startScanHttp }, service, 'scan');

export const startPolicyListeners = (listeners: readonly AnyListenerConfig[], service: () => PolicyService) =>
  startKinds(listeners, { policy: startPostfixPolicy, 'dovecot-policy': startDovecotPolicy }, service, 'policy');

export const startMilterListeners = (listeners: readonly AnyListenerConfig[], service: () => MilterService) =>
  startKinds(listeners, { milter: startMilter }, service, 'milter');

async function startKinds<S extends { readonly logger: Logger }>(listeners: readonly AnyListenerConfig[], starters: Starters<S>, service: () => S, group: string): Promise<ScanListeners> {
  const running: RunningListener[] = [];
  const close = async (graceMs: number) => {
    await Promise.all(running.map((r) => r.close(graceMs)));
  };
  let shared: S | undefined;
  try {
    for (const l of listeners) {
      const start = starters[l.kind] as ((l: AnyListenerConfig, s: S) => Promise<RunningListener>) | undefined;
      if (start) running.push(await start(l, (shared ??= service())));
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  for (const r of running) shared?.logger.info({ event: `${group}_listener`, listener: r.name, ...r.address() }, `${group} listener ${r.name} ready`);
  return {
    addresses: () => Object.fromEntries(running.map((r) => [r.name, r.address()])),
    close,
  };
}
