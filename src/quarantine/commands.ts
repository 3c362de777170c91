// The quarantine's commands as JSON in, JSON out: what the control socket serves to
// `portcullis quarantine …` while the gateway runs, and what the CLI runs itself otherwise.
import type { Quarantine } from './quarantine.js';
import { QuarantineError } from './types.js';

export const QUARANTINE_COMMANDS = ['list', 'show', 'release', 'delete', 'stats'] as const;
export type QuarantineCommand = (typeof QUARANTINE_COMMANDS)[number];

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export async function runQuarantineCommand(q: Quarantine, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const id = str(args.id);
  const recipient = str(args.recipient);
  const by = str(args.by) ?? 'admin';
  const needId = () => {
    if (!id) throw new QuarantineError('INVALID', `quarantine ${cmd} needs an id`);
    return id;
  };
  switch (cmd) {
    case 'list': {
      const limit = args.limit === undefined ? undefined : Number(args.limit);
      return q.list({ recipient, reason: str(args.reason), state: str(args.state), search: str(args.search), before: str(args.before), limit });
    }
    case 'show': {
      const item = q.get(needId(), recipient);
      if (!item) throw new QuarantineError('NOT_FOUND', `no quarantined message ${id}${recipient ? ` for ${recipient}` : ''}`);
      const headers = item.state === 'deleted' ? [] : await q.headers(item.id).catch(() => []);
      return { ...item, headers };
    }
    case 'release': return q.release(needId(), { by, recipient });
    case 'delete': return q.delete(needId(), { by, recipient });
    case 'stats': return q.stats();
    default: throw new QuarantineError('INVALID', `unknown quarantine command ${JSON.stringify(cmd)} (${QUARANTINE_COMMANDS.join(', ')})`);
  }
}
