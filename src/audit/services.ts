// The seven mail services the audit looks at on every host, their standard ports, and how TLS
// starts on each (RFC 8314 names: "submissions" is SMTP over implicit TLS on 465).

export type Protocol = 'smtp' | 'imap' | 'pop3';
export type ServiceName = 'smtp' | 'submissions' | 'submission' | 'pop3' | 'pop3s' | 'imap' | 'imaps';

export interface ServiceSpec {
  readonly name: ServiceName;
  readonly protocol: Protocol;
  readonly port: number;
  /** implicit: TLS from the first byte; starttls: plain text, upgraded by STARTTLS/STLS. */
  readonly tls: 'implicit' | 'starttls';
  /** Users log in here with passwords (everything but server-to-server SMTP on 25). */
  readonly userFacing: boolean;
}

export const SERVICES: readonly ServiceSpec[] = [
  { name: 'smtp', protocol: 'smtp', port: 25, tls: 'starttls', userFacing: false },
  { name: 'submissions', protocol: 'smtp', port: 465, tls: 'implicit', userFacing: true },
  { name: 'submission', protocol: 'smtp', port: 587, tls: 'starttls', userFacing: true },
  { name: 'pop3', protocol: 'pop3', port: 110, tls: 'starttls', userFacing: true },
  { name: 'pop3s', protocol: 'pop3', port: 995, tls: 'implicit', userFacing: true },
  { name: 'imap', protocol: 'imap', port: 143, tls: 'starttls', userFacing: true },
  { name: 'imaps', protocol: 'imap', port: 993, tls: 'implicit', userFacing: true },
];

export const SERVICE_NAMES: readonly ServiceName[] = SERVICES.map((s) => s.name);

export function serviceSpec(name: ServiceName): ServiceSpec {
  return SERVICES.find((s) => s.name === name)!;
}

/**
 * Parses "smtp=2525,submission=5870,imap=1143": the services to probe and their ports. Throws
 * (with a message for the user) on an unknown service or a bad port.
 */
export function parsePortOverrides(text: string): Partial<Record<ServiceName, number>> {
  const out: Partial<Record<ServiceName, number>> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z0-9]+)=(\d{1,5})$/i.exec(item);
    if (!m) throw new Error(`"${item}" is not SERVICE=PORT (e.g. smtp=2525)`);
    const name = m[1]!.toLowerCase() as ServiceName;
    if (!SERVICE_NAMES.includes(name)) throw new Error(`unknown service "${m[1]}" (one of ${SERVICE_NAMES.join(', ')})`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new Error(`port ${port} of ${name} is out of range`);
    out[name] = port;
  }
  return out;
}

/** The services to probe: all seven on their standard ports, or exactly those overridden. */
export function servicesToProbe(ports?: Partial<Record<ServiceName, number>>): { spec: ServiceSpec; port: number }[] {
  if (!ports || !Object.keys(ports).length) return SERVICES.map((spec) => ({ spec, port: spec.port }));
  return SERVICES.filter((s) => ports[s.name] !== undefined).map((spec) => ({ spec, port: ports[spec.name]! }));
}
