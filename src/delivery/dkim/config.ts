// Configuration of DKIM signing and ARC sealing of outgoing mail (`outbound.dkim`).
// Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';

// The header list OpenDKIM/rspamd sign by default. mailauth signs each field of the list that is
// present (all its instances); From is oversigned on top of that (oversign.ts).
export const DEFAULT_SIGNED_HEADERS = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-id', 'content-description',
  'resent-date', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-message-id',
  'in-reply-to', 'references', 'list-id', 'list-help', 'list-unsubscribe', 'list-subscribe',
  'list-post', 'list-owner', 'list-archive',
] as const;

export const dkimSigningConfigSchema = z.strictObject({
  /** Sign mail of our domains once a key exists for them. */
  sign: z.boolean().default(true),
  /** Header fields covered by the signature, when present (lower-case; a name listed twice counts once; From is always oversigned). */
  headers: z.array(z.string().regex(/^[\x21-\x39\x3b-\x7e]+$/, 'a header field name')).min(1).default([...DEFAULT_SIGNED_HEADERS]),
  /** Signature lifetime in seconds (the x= tag); 0 leaves x= out. */
  expire: z.number().int().min(0).default(0),
  /** ARC-seal mail we forward to outside addresses. */
  arc_seal: z.boolean().default(true),
}).prefault({});
export type DkimSigningConfig = z.output<typeof dkimSigningConfigSchema>;
