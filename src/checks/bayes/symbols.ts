// The symbols of the Bayes check (src/checks/bayes/index.ts): one band of the spam probability
// (two at 99.9 % and above). Weights in conf/scores.yaml.
import { declare } from '../registry.js';

export const BAYES_SYMBOLS = declare('bayes', {
  BAYES_00: 'spam probability under 1 %',
  BAYES_05: 'spam probability 1 to 5 %',
  BAYES_20: 'spam probability 5 to 20 %',
  BAYES_40: 'spam probability 20 to 40 %',
  BAYES_50: 'spam probability 40 to 60 %',
  BAYES_60: 'spam probability 60 to 80 %',
  BAYES_80: 'spam probability 80 to 95 %',
  BAYES_95: 'spam probability 95 to 99 %',
  BAYES_99: 'spam probability 99 % or more',
  BAYES_999: 'spam probability 99.9 % or more (with BAYES_99)',
});
