// The symbol registry: every symbol a check can emit, declared once — its name, its group (the
// defence it belongs to), a description, its default weight and, for the few findings that
// justify a refusal or a folder on their own, a default action. Each check declares its symbols
// beside its code (src/checks/<defence>/symbols.ts); families whose names come from the
// configuration (DNSBL_<NAME> per list, URIBL_<LIST>, each loaded .cf rule) are declared when the
// gateway is built. The registry is what lets the configuration be checked at start: a name in
// policy.symbols or policy.actions that no check can emit is a mistake, refused with its key.
//
// Default weights of the fixed symbols live in the shipped conf/scores.yaml (STYLE.md rule 1);
// a test holds the two together both ways (symbols.test.ts).
import type { SymbolAction } from '../protocol/symbol-actions.js';

export interface SymbolDecl {
  readonly name: string;
  /** The defence: dnsbl, spf, helo, rdns, greeting, dmarc, dkim, arc, av, archives, attachments, mime, rules, bayes, uri, headers, auth… */
  readonly group: string;
  readonly description: string;
  /**
   * The weight of a symbol whose family the configuration defines (a list's weight, a .cf score);
   * fixed symbols take theirs from conf/scores.yaml.
   */
  readonly weight?: number;
  /** What the symbol does beyond its weight when the operator says nothing (policy.actions). */
  readonly action?: SymbolAction;
  /**
   * Protocol safety, not policy: always refused, in observe mode too, and policy.actions may not
   * change it (From: not owned by the logged-in user, docs/pipeline.md).
   */
  readonly safety?: boolean;
}

/** A declared symbol with its default weight resolved. */
export interface RegisteredSymbol extends SymbolDecl {
  readonly weight: number;
  /** Where the weight comes from: conf/scores.yaml, or the configuration of the check (a list, a rule). */
  readonly weightFrom: 'scores.yaml' | 'check';
}

/** Declarations of one group, written as NAME: description (or [description, action]). */
export function declare(group: string, table: Readonly<Record<string, string | readonly [string, SymbolAction] | readonly [string, SymbolAction, 'safety']>>): SymbolDecl[] {
  return Object.entries(table).map(([name, v]) => {
    if (typeof v === 'string') return { name, group, description: v };
    return { name, group, description: v[0], action: v[1], ...(v[2] === 'safety' ? { safety: true } : {}) };
  });
}

export class SymbolRegistry {
  private readonly byName = new Map<string, RegisteredSymbol>();
  private readonly byGroup = new Map<string, RegisteredSymbol[]>();

  /**
   * @param decls every declaration (fixed and configured families)
   * @param shipped the weights of conf/scores.yaml
   * Throws when a fixed name is declared by two groups (two checks claiming one name). A name
   * a configured family repeats (a .cf rule called URI_NUMERIC_IP, as the URI check's symbol) is
   * the first declaration's: both checks may emit it, and it counts once (the heavier hit).
   */
  constructor(decls: readonly SymbolDecl[], shipped: ReadonlyMap<string, number>) {
    for (const d of decls) {
      const seen = this.byName.get(d.name);
      if (seen) {
        const configured = d.weight !== undefined || seen.weightFrom === 'check';
        if (seen.group !== d.group && !configured) throw new Error(`symbol ${d.name} is declared by two groups: ${seen.group} and ${d.group}`);
        continue;
      }
      const fromFile = shipped.get(d.name);
      const s: RegisteredSymbol = d.weight !== undefined
        ? { ...d, weight: d.weight, weightFrom: 'check' }
        : { ...d, weight: fromFile ?? 0, weightFrom: 'scores.yaml' };
      this.byName.set(d.name, s);
      const list = this.byGroup.get(d.group) ?? [];
      list.push(s);
      this.byGroup.set(d.group, list);
    }
  }

  get(name: string): RegisteredSymbol | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The registry's default weight (level 3 of the precedence, docs/pipeline.md). */
  weight(name: string): number | undefined {
    return this.byName.get(name)?.weight;
  }

  groupOf(name: string): string | undefined {
    return this.byName.get(name)?.group;
  }

  inGroup(group: string): readonly RegisteredSymbol[] {
    return this.byGroup.get(group) ?? [];
  }

  groups(): string[] {
    return [...this.byGroup.keys()].sort();
  }

  all(): RegisteredSymbol[] {
    return [...this.byName.values()];
  }

  /** The symbols a glob in policy.actions applies to (`*` = any run of name characters; failure symbols are matched by name only). */
  matching(glob: string): RegisteredSymbol[] {
    const re = globPattern(glob);
    return this.all().filter((s) => re.test(s.name) && !isFailureSymbol(s.name));
  }
}

/** `DNSBL_*` → /^DNSBL_[A-Z0-9_]*$/i. Symbol names have no other special characters to care about. */
export function globPattern(glob: string): RegExp {
  const body = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[A-Za-z0-9_]*');
  return new RegExp(`^${body}$`);
}

export const isGlob = (key: string): boolean => key.includes('*');

/**
 * A failure symbol says a check could not answer (a lookup timed out, a scan ran out of time), not
 * that it found something. Globs and groups in policy.actions never give such a symbol their action,
 * so that `DNSBL_*: junk` does not junk every message while the DNS is down; an operator who wants an
 * action for one names it exactly.
 */
export const isFailureSymbol = (name: string): boolean => /_(?:TEMPFAIL|TIMEOUT)$/.test(name);
