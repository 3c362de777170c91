// Starts the `kind: spamd` and `kind: scan-http` entries (and, below, the policy listeners) of `listeners` (each off unless
// configured) on one shared scanner, and stops them.
import type { AnyListenerConfig } from '../smtp/config.js';
import type { ScanService } from './service.js';
import { startSpamd, type RunningScanListener } from './spamd.js';
import { startScanHttp } from './scan-http.js';
import type { PolicyService } from './policy-service.js';
import { startPostfixPolicy } from './postfix-policy.js';
import { startDovecotPolicy } from './dovecot-policy.js';

export interface ScanListeners {
  addresses(): Record<string, { address: string; port: number }>;
  close(graceMs: number): Promise<void>;
}

/** `service` is built only when a scan listener is configured (a site without one pays nothing). */
export async function startScanListeners(listeners: readonly AnyListenerConfig[], service: () => ScanService): Promise<ScanListeners> {
  const running: RunningScanListener[] = [];
  const close = async (graceMs: number) => {
    await Promise.all(running.map((r) => r.close(graceMs)));
  };
  let shared: ScanService | undefined;
  try {
    for (const l of listeners) {
      if (l.kind === 'spamd') running.push(await startSpamd(l, (shared ??= service())));
      else if (l.kind === 'scan-http') running.push(await startScanHttp(l, (shared ??= service())));
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  for (const r of running) {
    const a = r.address();
    shared?.logger.info({ event: 'scan_listener', listener: r.name, ...a }, `scan listener ${r.name} ready`);
  }
  return {
    addresses: () => Object.fromEntries(running.map((r) => [r.name, r.address()])),
    close,
  };
}

/**
 * Starts the `kind: policy` (Postfix policy delegation) and `kind: dovecot-policy` (Dovecot's
 * auth policy) entries of `listeners`, each off unless configured, on the gateway's own runner
 * and brute-force defence. `service` is built only when one is configured.
 */
export async function startPolicyListeners(listeners: readonly AnyListenerConfig[], service: () => PolicyService): Promise<ScanListeners> {
  const running: RunningScanListener[] = [];
  const close = async (graceMs: number) => {
    await Promise.all(running.map((r) => r.close(graceMs)));
  };
  let shared: PolicyService | undefined;
  try {
    for (const l of listeners) {
      if (l.kind === 'policy') running.push(await startPostfixPolicy(l, (shared ??= service())));
      else if (l.kind === 'dovecot-policy') running.push(await startDovecotPolicy(l, (shared ??= service())));
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  for (const r of running) shared?.logger.info({ event: 'policy_listener', listener: r.name, ...r.address() }, `policy listener ${r.name} ready`);
  return {
    addresses: () => Object.fromEntries(running.map((r) => [r.name, r.address()])),
    close,
  };
}
