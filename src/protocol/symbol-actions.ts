// The vocabulary of the actions layer (src/pipeline/actions.ts), down here because the
// configuration schema validates policy.actions with it and sits below the pipeline.
export const SYMBOL_ACTIONS = ['ignore', 'score', 'tag', 'junk', 'quarantine', 'tempfail', 'reject'] as const;
export type SymbolAction = (typeof SYMBOL_ACTIONS)[number];
