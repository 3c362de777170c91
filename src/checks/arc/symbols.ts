// The symbols of ARC chain validation (src/checks/dkim/arc.ts).
import { declare } from '../registry.js';

export const ARC_SYMBOLS = declare('arc', {
  ARC_PASS: 'the ARC chain validates',
  ARC_FAIL: 'the ARC chain is broken',
  ARC_NONE: 'no ARC chain',
});
