// Configuration of local Maildir delivery (`maildir`): the sweep of stale tmp/ files
// (maildir-sweep.ts). Composed into the one schema by src/config/schema.ts.
import { z } from 'zod';
import { duration } from '../config/fields.js';

export const maildirConfigSchema = z.strictObject({
  /** A file in a Maildir's tmp/ older than this is a delivery cut short and is removed (Dovecot: 36h). */
  tmp_max_age: duration('36h'),
  /** How often the tmp/ folders are swept after the sweep at start. */
  tmp_sweep_interval: duration('1h'),
}).prefault({});

export type MaildirConfig = z.output<typeof maildirConfigSchema>;
