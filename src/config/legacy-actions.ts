// The seven per-check action keys of earlier versions, each with its own vocabulary, now live in
// one place: policy.actions (docs/migration.md). A configuration that still uses one keeps its
// meaning: the key is mapped at load to the policy.actions entries that say the same, and a
// deprecation warning shows the new form. A value the old key never accepted is refused with the
// new form in the message. Never a silent change of behaviour.

type Doc = Record<string, unknown>;
type Actions = Record<string, string>;

interface LegacyKey {
  /** Path of the old key, e.g. ['spf', 'fail_action']. */
  readonly path: readonly string[];
  /** Old value → the policy.actions entries that mean the same. */
  readonly values: Readonly<Record<string, Actions>>;
  /** For keys that stay with a smaller vocabulary (archives): the value left in place of a moved one. */
  readonly keep?: Readonly<Record<string, string>>;
  /** For those keys: the values they still take, so that any other gets the new form in its message. */
  readonly current?: readonly string[];
}

export const LEGACY_ACTION_KEYS: readonly LegacyKey[] = [
  { path: ['dnsbl', 'action'], values: { reject: { DNSBL_LISTED: 'reject' }, score: { DNSBL_LISTED: 'score' } } },
  { path: ['spf', 'fail_action'], values: { reject: { SPF_FAIL: 'reject' }, score: { SPF_FAIL: 'score' } } },
  { path: ['greeting', 'early_talker'], values: { reject: { EARLY_TALKER: 'reject' }, score: { EARLY_TALKER: 'score' } } },
  { path: ['antivirus', 'on_failure'], values: { tempfail: { AV_UNAVAILABLE: 'tempfail' }, tag: { AV_UNAVAILABLE: 'tag' } } },
  {
    path: ['authentication', 'dmarc', 'enforce'],
    values: { reject: { DMARC_REJECT: 'reject' }, junk: { DMARC_REJECT: 'junk' }, score: { DMARC_REJECT: 'score', DMARC_QUARANTINE: 'score' } },
  },
  { path: ['archives', 'executable_inside'], values: { reject: { ARCHIVE_EXE: 'reject' } }, keep: { reject: 'score' }, current: ['strip', 'score'] },
  { path: ['archives', 'encrypted'], values: { reject: { ARCHIVE_ENCRYPTED: 'reject' } }, keep: { reject: 'score' }, current: ['score', 'strip'] },
  {
    path: ['attachments', 'on_unscannable'],
    values: {
      reject: { MIME_UNSCANNABLE: 'reject' }, tempfail: { MIME_UNSCANNABLE: 'tempfail' },
      accept: { MIME_UNSCANNABLE: 'score', MIME_SCAN_TIMEOUT: 'score' },
    },
  },
];

export interface LegacyMigration {
  /** The document with the old keys replaced (the input is not changed). */
  readonly doc: unknown;
  /** One per old key found: what it was mapped to, in the new form. */
  readonly warnings: string[];
  /** Old keys with a value they never accepted, or in conflict with policy.actions. */
  readonly problems: string[];
}

const isDoc = (v: unknown): v is Doc => !!v && typeof v === 'object' && !Array.isArray(v);
const yamlActions = (a: Actions) => `policy: { actions: { ${Object.entries(a).map(([k, v]) => `${k}: ${v}`).join(', ')} } }`;
/** Each old value of a key with the policy.actions form that means the same. */
const newForms = (key: LegacyKey) => Object.entries(key.values).map(([v, a]) => `${v} → ${yamlActions(a)}`).join('; ');

export function migrateLegacyActions(raw: unknown): LegacyMigration {
  const warnings: string[] = [];
  const problems: string[] = [];
  if (!isDoc(raw)) return { doc: raw, warnings, problems };
  const doc = structuredClone(raw) as Doc;
  const moved: Actions = {};
  for (const key of LEGACY_ACTION_KEYS) {
    const parents = key.path.slice(0, -1);
    let section: unknown = doc;
    for (const p of parents) section = isDoc(section) ? section[p] : undefined;
    const leaf = key.path[key.path.length - 1]!;
    if (!isDoc(section) || !(leaf in section)) continue;
    const name = key.path.join('.');
    const value = section[leaf];
    const mapped = typeof value === 'string' ? key.values[value] : undefined;
    const kept = typeof value === 'string' ? key.keep?.[value] : undefined;
    if (key.keep && !mapped) {
      // A value the key still takes (archives: strip, score) stays; any other gets the choices and
      // the new form of the one that moved, not only the schema's list.
      if (typeof value === 'string' && key.current?.includes(value)) continue;
      problems.push(`${name}: ${JSON.stringify(value)} is not one of ${key.current?.join(', ')}; refusing moved to policy.actions (${newForms(key)})`);
      continue;
    }
    if (!mapped) {
      problems.push(`${name}: this key moved to policy.actions, and ${JSON.stringify(value)} was never one of its values (${newForms(key)})`);
      continue;
    }
    if (kept) section[leaf] = kept;
    else delete section[leaf];
    Object.assign(moved, mapped);
    warnings.push(`${name}: ${String(value)} is deprecated; it means ${yamlActions(mapped)}${kept ? ` (with ${name}: ${kept})` : ''} — write that instead`);
  }
  if (Object.keys(moved).length) {
    const policy = isDoc(doc.policy) ? doc.policy : (doc.policy = {});
    const given = isDoc((policy as Doc).actions) ? (policy as Doc).actions as Doc : {};
    for (const [k, v] of Object.entries(moved)) {
      if (k in given && given[k] !== v) problems.push(`policy.actions.${k}: ${String(given[k])} contradicts a deprecated key that means ${k}: ${v}; remove the deprecated key`);
    }
    (policy as Doc).actions = { ...moved, ...given };
  }
  return { doc, warnings, problems };
}
