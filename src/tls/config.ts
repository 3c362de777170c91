// Configuration of TLS for every listener (`tls`). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

const certificate = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
});

export const tlsConfigSchema = z.strictObject({
  certificates: z.array(certificate).default([]),
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  ciphers: z.string().default(
    'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:' +
    'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305'),
  self_signed: z.boolean().default(true),
}).prefault({}).prefault({});

export type TlsConfig = z.output<typeof tlsConfigSchema>;
