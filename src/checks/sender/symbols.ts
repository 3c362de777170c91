// The symbol of the From-ownership check (from-ownership.ts). Protocol safety, not policy: a
// logged-in user writing as another is refused in observe mode too (docs/pipeline.md).
import { declare } from '../registry.js';

export const SENDER_SYMBOLS = declare('sender', {
  FROM_NOT_OWNED: ['From: not owned by the logged-in user, or without an address (refused 553 5.7.1)', 'reject', 'safety'],
});
