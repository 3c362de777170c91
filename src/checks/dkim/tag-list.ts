// The tag=value list of DKIM-Signature, ARC-Seal and ARC-Message-Signature fields, checked
// strictly (RFC 6376 s3.2). mailauth's parser is lenient: it folds tag names to lower case, keeps
// the last of duplicate tags and skips empty specs, so "S=sel", "s=a; s=b" and ";;" pass. RFC
// 6376 s3.2 makes each of them an invalid field ("if a tag name does occur more than once, the
// entire tag-list is invalid"; tag names are case-sensitive), and the ARC test suite expects a
// seal written so to fail.

const TAG_SPEC = /^[ \t]*([A-Za-z][A-Za-z0-9_]*)[ \t]*=([\s\S]*)$/;

/** Undefined when the list is well formed and has every required tag; else what is wrong. */
export function tagListProblem(field: string, required: readonly string[]): string | undefined {
  const colon = field.indexOf(':');
  // Unfold; FWS inside values (b=, h=) is allowed and stays.
  const value = (colon >= 0 ? field.slice(colon + 1) : field).replace(/\r?\n(?=[ \t])/g, '');
  const specs = value.split(';');
  if (specs.length > 1 && specs[specs.length - 1]!.trim() === '') specs.pop(); // one trailing ";" is allowed
  const seen = new Set<string>();
  for (const spec of specs) {
    const m = TAG_SPEC.exec(spec);
    if (!m) return spec.trim() ? `malformed tag "${spec.trim().slice(0, 20)}"` : 'empty tag (";;")';
    const name = m[1]!;
    if (seen.has(name)) return `duplicate tag ${name}=`;
    seen.add(name);
  }
  const missing = required.filter((t) => !seen.has(t));
  return missing.length ? `missing tag${missing.length > 1 ? 's' : ''} ${missing.map((t) => `${t}=`).join(' ')}` : undefined;
}

export const REQUIRED = {
  dkim: ['v', 'a', 'b', 'bh', 'd', 'h', 's'],
  seal: ['i', 'a', 'b', 'cv', 'd', 's'],
  messageSignature: ['i', 'a', 'b', 'bh', 'd', 'h', 's'],
} as const;
