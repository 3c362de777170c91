// The matching thread. JavaScript cannot interrupt a running regular expression, so the rules
// run here, where the engine can terminate the whole thread when a message overruns its time
// budget; progress (the rule running, the counts so far) is in shared memory for it to read.
import { parentPort, workerData } from 'node:worker_threads';
import { matchAll, prepareRules, timeSlot, PROGRESS_SEQ } from './matcher.js';
import type { RegexRule } from './ruleset.js';
import type { ScanInput } from './targets.js';

export interface WorkerInit {
  readonly rules: readonly RegexRule[];
  readonly progress: SharedArrayBuffer;
}

export interface ScanRequest {
  readonly seq: number;
  readonly input: ScanInput;
  readonly maxBytes: number;
  readonly slowRuleMs: number;
  readonly skip?: readonly number[];
}

export interface ScanReply {
  readonly seq: number;
  readonly slow: [number, number][];
  readonly error?: string;
}

const init = workerData as WorkerInit;
const rules = prepareRules(init.rules);
// V8 compiles a regex on its first runs (bytecode, then native code on the next run); a large
// one (ReplaceTags expansions reach 200 KB of pattern) takes up to a second. Pay that here,
// before taking messages, so that no message's time budget is spent compiling.
const sample = 'Warm-up text 123 http://example.com/ <b>x</b>\n';
for (const p of rules) {
  for (let k = 0; k < 2; k++) {
    p.re?.test(sample);
    if (p.reG) {
      p.reG.lastIndex = 0;
      p.reG.test(sample);
    }
  }
}
const progress = new Int32Array(init.progress);
const clock = timeSlot(init.progress);

parentPort!.on('message', (req: ScanRequest) => {
  Atomics.store(progress, PROGRESS_SEQ, req.seq);
  try {
    const out = matchAll(rules, req.input, { maxBytes: req.maxBytes, slowRuleMs: req.slowRuleMs, skip: req.skip ? new Set(req.skip) : undefined }, progress, clock);
    parentPort!.postMessage({ seq: req.seq, slow: out.slow } satisfies ScanReply);
  } catch (e) {
    parentPort!.postMessage({ seq: req.seq, slow: [], error: (e as Error).message } satisfies ScanReply);
  }
});
parentPort!.postMessage('ready');
