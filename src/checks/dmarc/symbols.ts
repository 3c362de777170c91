// The symbols of DMARC evaluation (src/checks/dkim/authentication-check.ts, dmarc.ts).
import { declare } from '../registry.js';

export const DMARC_SYMBOLS = declare('dmarc', {
  DMARC_PASS: 'the From: domain is authenticated by aligned DKIM or SPF',
  DMARC_REJECT: ['fails DMARC, the domain asks for p=reject: refused at the end of DATA, 550 5.7.1', 'reject'],
  DMARC_QUARANTINE: ['fails DMARC, the domain asks for p=quarantine: delivered to Junk', 'junk'],
  DMARC_NONE_POLICY: 'fails DMARC, the domain asks for nothing (p=none)',
  DMARC_ARC_OVERRIDE: 'a failure not enforced: a trusted ARC sealer saw it pass',
  DMARC_NA: 'the From: domain publishes no DMARC record',
  DMARC_TEMPERROR: 'the DMARC record could not be read (DNS failure)',
  DMARC_PERMERROR: 'no usable From address, or a broken record',
});
