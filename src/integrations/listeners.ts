// Starts the `kind: spamd` and `kind: scan-http` entries of `listeners` (each off unless
// configured) on one shared scanner, and stops them; `kind: milter` entries on the SMTP path's
// own runner (milter/service.ts).
import type { AnyListenerConfig } from '../smtp/config.js';
import type { ScanService } from './service.js';
import { startSpamd, type RunningScanListener } from './spamd.js';
import { startScanHttp } from './scan-http.js';
// ---- kind: milter
import type { MilterService } from './milter/service.js';
import { startMilter } from './milter/listener.js';
// ---- end kind: milter

export interface ScanListeners {
  addresses(): Record<string, { address: string; port: number }>;
  close(graceMs: number): Promise<void>;
}

/** `service` is built only when a scan listener is configured (a site without one pays nothing). */
export async function startScanListeners(listeners: readonly AnyListenerConfig[], service: () => ScanService, milter?: () => MilterService): Promise<ScanListeners> {
  const running: RunningScanListener[] = [];
  const close = async (graceMs: number) => {
    await Promise.all(running.map((r) => r.close(graceMs)));
  };
  let shared: ScanService | undefined;
  let milterService: MilterService | undefined;
  try {
    for (const l of listeners) {
      if (l.kind === 'spamd') running.push(await startSpamd(l, (shared ??= service())));
      else if (l.kind === 'scan-http') running.push(await startScanHttp(l, (shared ??= service())));
      // ---- kind: milter
      else if (l.kind === 'milter') {
        if (!milter) throw new Error(`listeners: ${l.name}: kind milter is not available here`);
        running.push(await startMilter(l, (milterService ??= milter())));
      }
      // ---- end kind: milter
    }
  } catch (err) {
    await close(0);
    throw err;
  }
  for (const r of running) {
    const a = r.address();
    (shared ?? milterService)?.logger.info({ event: 'scan_listener', listener: r.name, ...a }, `scan listener ${r.name} ready`);
  }
  return {
    addresses: () => Object.fromEntries(running.map((r) => [r.name, r.address()])),
    close,
  };
}
