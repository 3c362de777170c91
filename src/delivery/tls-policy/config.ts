// Configuration of TLS on the way out (`outbound.tls`): per-domain overrides, MTA-STS, DANE,
// TLS-RPT. Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

export const outboundTlsConfigSchema = z.strictObject({}).prefault({});
export type OutboundTlsConfig = z.output<typeof outboundTlsConfigSchema>;
