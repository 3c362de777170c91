// How the audit paces itself: a bounded number of jobs at once, and new connections spaced
// evenly (a rate limit, so that an audit never looks like a flood to the servers it visits).

/** Spaces events at least 1/perSecond apart; take() resolves when the caller's turn comes. */
export class RateLimiter {
  private next = 0;
  private readonly gapMs: number;

  constructor(perSecond: number, private readonly now: () => number = Date.now) {
    if (!(perSecond > 0)) throw new Error('the rate must be a positive number of connections per second');
    this.gapMs = 1000 / perSecond;
  }

  take(signal?: AbortSignal): Promise<void> {
    const t = this.now();
    const at = Math.max(t, this.next);
    this.next = at + this.gapMs;
    if (at <= t) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, at - t);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/** Runs the tasks with at most `concurrency` in flight; results in task order. Never rejects if no task does. */
export async function runPool<T>(tasks: readonly (() => Promise<T>)[], concurrency: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, tasks.length)) }, worker));
  return results;
}
