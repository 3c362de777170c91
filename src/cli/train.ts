// `portcullis train --spam PATH --ham PATH [--forget] [--json]`: teaches the Bayes store from
// message files, folders, mboxes and tarballs (src/cli/corpus/read.ts). Safe while the gateway
// runs: each message is its own short transaction in the shared WAL-mode file.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bufferModel, DEFAULT_SCAN_BYTES, type ParsedMessage } from '../mime/model.js';
import { readMessages } from './corpus/read.js';
import { Progress, corpusBytes } from './corpus/progress.js';
import { Bayes } from '../checks/bayes/index.js';
import { bayesConfigSchema, bayesFile, type BayesConfig } from '../checks/bayes/config.js';
import type { BayesClass } from '../checks/bayes/store.js';
import type { StoreConfig } from '../store/config.js';
import { describe as describeRedis } from '../store/redis-store.js';

export const TRAIN_USAGE = `usage: portcullis train [--config FILE] --spam PATH... --ham PATH... [--forget] [--json]

  --spam PATH   messages to learn as spam: a message file, a folder (recursive), an mbox,
                or a .tar/.tar.gz/.tgz; repeatable
  --ham PATH    the same, learned as ham
  --forget      unlearn the messages instead (their class is whatever they were learned as)
  --json        print the counts as JSON`;

/** What train needs from the configuration (a full Config fits). */
export interface TrainConfig {
  readonly data_dir: string;
  readonly bayes?: Partial<BayesConfig>;
  /** The content checks' scan cap: training reads a message as the gateway's Bayes check does. */
  readonly spam?: { readonly max_scan_bytes: number };
  /** With `backend: redis`, train the Bayes tokens shared by every node (docs/store.md). */
  readonly store?: StoreConfig;
}

export interface ClassCounts {
  learned: number;
  relearned: number;
  already: number;
  /** --forget: removed, and not learned before. */
  forgotten: number;
  notLearned: number;
  unreadable: number;
}


export async function trainCommand(argv: string[], config: TrainConfig): Promise<number> {
  let values: { spam?: string[]; ham?: string[]; forget?: boolean; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        spam: { type: 'string', multiple: true },
        ham: { type: 'string', multiple: true },
        forget: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`train: ${(err as Error).message}\n\n${TRAIN_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  const inputs: [BayesClass, string][] = [
    ...(values.spam ?? []).map((p) => ['spam', p] as [BayesClass, string]),
    ...(values.ham ?? []).map((p) => ['ham', p] as [BayesClass, string]),
  ];
  if (!inputs.length) {
    console.error(`train: give at least one --spam or --ham PATH\n\n${TRAIN_USAGE}`);
    return 2;
  }
  for (const [, p] of inputs) {
    if (!fs.existsSync(p)) {
      console.error(`train: ${p}: no such file or directory`);
      return 2;
    }
  }
  let cfg: BayesConfig;
  try {
    cfg = bayesConfigSchema.parse(config.bayes ?? {});
  } catch (err) {
    console.error(`train: invalid bayes configuration: ${(err as Error).message}`);
    return 2;
  }
  const file = config.store?.backend === 'redis' ? `${describeRedis({ url: config.store.url, sentinel: config.store.sentinel, cluster: config.store.cluster })} (prefix ${config.store.prefix})` : bayesFile(config);
  let bayes: Bayes;
  try {
    bayes = Bayes.fromConfig(config, Bayes.optionsFrom(cfg));
  } catch (err) {
    console.error(`train: cannot open ${file}: ${(err as Error).message}`);
    return 1;
  }
  const maxScanBytes = config.spam?.max_scan_bytes ?? DEFAULT_SCAN_BYTES;
  const counts: Record<BayesClass, ClassCounts> = { spam: zero(), ham: zero() };
  const progress = new Progress(values.forget ? 'forget' : 'train', process.stderr.isTTY && !values.json ? await corpusBytes(inputs.map(([, p]) => p)) : undefined,
    values.json ? { isTTY: false, write: () => true } : process.stderr);
  const empty: string[] = [];
  // Learning goes in batches (one transaction each, see BayesStore.learnMany), bounded in
  // messages and bytes so memory stays small and the gateway never waits long for the lock.
  let batch: { msg: ParsedMessage; cls: BayesClass }[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    const outcomes = await bayes.learnMany(batch);
    outcomes.forEach((o, i) => counts[batch[i]!.cls][o]++);
    batch = [];
    batchBytes = 0;
  };
  try {
    for (const [cls, p] of inputs) {
      const c = counts[cls];
      const onSkip = (n: { name: string; reason: string }) => {
        c.unreadable++;
        progress.finish();
        if (!values.json) console.error(`train: skipped ${n.name}: ${n.reason}`);
      };
      let found = 0;
      for await (const m of readMessages(p, { onSkip })) {
        found++;
        const msg = await bufferModel(m.raw, { maxScanBytes }).content();
        if (values.forget) {
          if (await bayes.forget(msg)) c.forgotten++;
          else c.notLearned++;
        } else {
          batch.push({ msg, cls });
          batchBytes += m.raw.length;
          if (batch.length >= BATCH_MESSAGES || batchBytes >= BATCH_BYTES) await flush();
        }
        progress.tick(m.raw.length);
      }
      if (!found) empty.push(p);
    }
    await flush();
    progress.finish();
    const totals = await bayes.stats();
    if (values.json) {
      console.log(JSON.stringify({ file, forget: !!values.forget, spam: counts.spam, ham: counts.ham, totals }, null, 2));
    } else {
      for (const cls of ['spam', 'ham'] as const) {
        const c = counts[cls];
        if (!(values[cls] ?? []).length) continue;
        console.log(values.forget
          ? `${cls}: ${c.forgotten} forgotten, ${c.notLearned} not learned before, ${c.unreadable} unreadable`
          : `${cls}: ${c.learned} learned, ${c.relearned} relearned, ${c.already} already known, ${c.unreadable} unreadable`);
      }
      console.log(`${file}: ${totals.spam} spam and ${totals.ham} ham learned, ${totals.tokens} tokens`);
      const min = cfg.min_learned;
      if (totals.spam < min || totals.ham < min) console.log(`Bayes gives no verdict until ${min} of each class are learned.`);
    }
    // A path that held no message is an error (a typo'd folder, an empty Maildir), even though
    // the other paths were learned: "0 learned" must not pass for success in a script.
    for (const p of empty) console.error(`train: no messages found in ${p}`);
    return empty.length ? 1 : 0;
  } catch (err) {
    console.error(`train: ${(err as Error).message}`);
    return 1;
  } finally {
    await bayes.close();
  }
}

const BATCH_MESSAGES = 100;
const BATCH_BYTES = 16 * 1024 * 1024;

function zero(): ClassCounts {
  return { learned: 0, relearned: 0, already: 0, forgotten: 0, notLearned: 0, unreadable: 0 };
}
