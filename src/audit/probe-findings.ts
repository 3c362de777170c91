// Findings shared by the network probes: a service that is closed, silent, unreachable, or
// answers something that is not its protocol. None of these is a crash; each is a line in the
// report with what was seen.
import net from 'node:net';
import { Dialogue, ProbeError } from './dialogue.js';
import { cleanEvidence, type Finding, type Severity } from './findings.js';
import { dialogueOptions, endpointLabel, inspectingTls, type Endpoint, type ProbeContext } from './probe-context.js';

/** What a probe found out: its protocol's facts and the report lines. */
export interface ProbeResult<F> {
  readonly facts: F;
  readonly findings: Finding[];
}

/**
 * Connects to the endpoint for a probe (inside TLS for an implicit-TLS port, certificate
 * inspected rather than trusted). An endpoint that cannot be reached is the probe's whole result.
 */
export async function openProbe(e: Endpoint, ctx: ProbeContext): Promise<{ dialogue: Dialogue; unreachable?: undefined } | { unreachable: ProbeResult<{ reachable: false; tls: false }> }> {
  const implicit = e.service.tls === 'implicit';
  try {
    return { dialogue: await Dialogue.open({ ...dialogueOptions(e, ctx), implicitTls: implicit ? inspectingTls(e, ctx) : undefined }) };
  } catch (err) {
    return { unreachable: { facts: { reachable: false, tls: false }, findings: [failureFinding(e, err)] } };
  }
}

/** The finding for a probe that could not do its work; `transcript` is what was said before. */
export function failureFinding(e: Endpoint, err: unknown, transcript: readonly string[] = []): Finding {
  const target = endpointLabel(e);
  const pe = err instanceof ProbeError ? err : new ProbeError('error', (err as Error)?.message ?? String(err));
  const evidence = cleanEvidence([...transcript, `-- ${pe.message}`].join('\n'));
  const mxPort = e.service.name === 'smtp';
  switch (pe.kind) {
    case 'refused':
      return {
        code: 'SERVICE_CLOSED', area: 'reachability', severity: mxPort ? 'warning' : 'info', target, evidence,
        title: mxPort ? 'The mail server refuses connections on its SMTP port' : `Nothing listens for ${e.service.name}`,
        fix: mxPort ? 'Start the SMTP service on this host or remove the host from the MX records.' : undefined,
      };
    case 'timeout':
    case 'unreachable': {
      if (pe.kind === 'unreachable' && net.isIPv6(e.address)) {
        return {
          code: 'SERVICE_UNREACHABLE', area: 'reachability', severity: 'info', target, evidence,
          title: 'No route to this IPv6 address from here', fix: 'Run the audit from a machine with IPv6 to check this address.',
        };
      }
      const silentAfterConnect = pe.connected;
      const severity: Severity = mxPort || silentAfterConnect ? 'warning' : 'info';
      return {
        code: silentAfterConnect ? 'SERVICE_SILENT' : 'SERVICE_UNREACHABLE', area: 'reachability', severity, target, evidence,
        title: silentAfterConnect ? `The ${e.service.name} service stopped answering` : `No connection to ${e.service.name} (filtered or down)`,
        fix: mxPort
          ? 'Make port 25 reachable from the Internet on every MX host (if this audit runs from a network that blocks outgoing port 25, run it from elsewhere).'
          : silentAfterConnect ? 'Check the service: it accepted the connection but did not answer in time.' : undefined,
      };
    }
    case 'garbage':
      return {
        code: 'PROTOCOL_GARBAGE', area: 'reachability', severity: 'warning', target, evidence,
        title: `The server on this port does not speak ${e.service.protocol.toUpperCase()}`,
        fix: `Check what listens on port ${e.port}: clients expect ${e.service.protocol.toUpperCase()} there.`,
      };
    case 'aborted':
      return {
        code: 'PROBE_TIMEOUT', area: 'reachability', severity: 'warning', target, evidence,
        title: 'The probe ran out of time', fix: 'Check the service: its answers are too slow for clients (tarpit or overload).',
      };
    case 'tls':
      return {
        code: 'TLS_HANDSHAKE_FAILED', area: 'encryption', severity: e.service.userFacing ? 'critical' : 'warning', target, evidence,
        title: 'The TLS handshake fails', fix: 'Fix the TLS configuration (certificate, key, protocol versions) so that modern clients can connect.',
      };
    case 'closed':
      return {
        code: 'SERVICE_HUNG_UP', area: 'reachability', severity: 'warning', target, evidence,
        title: 'The server closed the connection in mid-dialogue', fix: 'Check the service logs: it dropped a well-formed session.',
      };
    default:
      return {
        code: 'PROBE_FAILED', area: 'reachability', severity: 'warning', target, evidence,
        title: `The ${e.service.name} probe failed`, fix: 'Check the service and rerun the audit.',
      };
  }
}
