// The expressions of `meta` rules and of `if` conditionals: numbers, names, ! && || ( ),
// + - * /, comparisons. Parsed into a small tree (plain data, so a compiled ruleset can cross
// into a worker) and evaluated with Perl's semantics: && and || yield an operand's value,
// comparisons and ! yield 1 or 0, an unknown name is 0, division by zero is 0 (Perl would die;
// a rule must not stop the scan).

export type Expr =
  | { readonly k: 'num'; readonly v: number }
  | { readonly k: 'ref'; readonly name: string }
  | { readonly k: 'not' | 'neg'; readonly a: Expr }
  | { readonly k: 'bin'; readonly op: BinOp; readonly a: Expr; readonly b: Expr };

export type BinOp = '&&' | '||' | '+' | '-' | '*' | '/' | '>' | '>=' | '<' | '<=' | '==' | '!=';

const PRECEDENCE: Record<BinOp, number> = {
  '||': 1, '&&': 2, '==': 3, '!=': 3, '>': 4, '>=': 4, '<': 4, '<=': 4, '+': 5, '-': 5, '*': 6, '/': 6,
};

export class ExprError extends Error {}

type Token = { t: 'num'; v: number } | { t: 'name'; v: string } | { t: 'op'; v: string };

/** `call` resolves function-like tokens such as plugin(Mail::X) in `if` lines to a number. */
export function tokenize(text: string, call?: (fn: string, arg: string) => number): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][\w:]*)\s*(\(([^()]*)\))?|(&&|\|\||>=|<=|==|!=|[!()+\-*/<>]))/y;
  let pos = 0;
  text = text.trimEnd();
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new ExprError(`unexpected "${text.slice(pos).trim().slice(0, 20)}"`);
    pos = re.lastIndex;
    if (m[1] !== undefined) out.push({ t: 'num', v: Number(m[1]) });
    else if (m[2] !== undefined) {
      if (m[3] !== undefined) {
        if (!call) throw new ExprError(`function call ${m[2]}(...) is not allowed here`);
        out.push({ t: 'num', v: call(m[2], m[4]!.trim()) });
      } else out.push({ t: 'name', v: m[2] });
    } else out.push({ t: 'op', v: m[5]! });
  }
  return out;
}

export function parseExpr(text: string, call?: (fn: string, arg: string) => number): Expr {
  const tokens = tokenize(text, call);
  if (tokens.length === 0) throw new ExprError('empty expression');
  let i = 0;
  const peek = () => tokens[i];
  const primary = (): Expr => {
    const t = tokens[i++];
    if (!t) throw new ExprError('expression ends too early');
    if (t.t === 'num') return { k: 'num', v: t.v };
    if (t.t === 'name') return { k: 'ref', name: t.v };
    if (t.v === '(') {
      const e = binary(1);
      const c = tokens[i++];
      if (!c || c.t !== 'op' || c.v !== ')') throw new ExprError('missing ")"');
      return e;
    }
    if (t.v === '!') return { k: 'not', a: primary() };
    if (t.v === '-') return { k: 'neg', a: primary() };
    if (t.v === '+') return primary();
    throw new ExprError(`unexpected "${t.v}"`);
  };
  // Precedence climbing, left-associative.
  const binary = (minPrec: number): Expr => {
    let left = primary();
    for (;;) {
      const t = peek();
      if (!t || t.t !== 'op' || !(t.v in PRECEDENCE)) return left;
      const op = t.v as BinOp;
      const p = PRECEDENCE[op];
      if (p < minPrec) return left;
      i++;
      left = { k: 'bin', op, a: left, b: binary(p + 1) };
    }
  };
  const e = binary(1);
  if (i < tokens.length) {
    const t = tokens[i]!;
    throw new ExprError(`unexpected "${t.t === 'op' ? t.v : String(t.v)}" after a complete expression`);
  }
  return e;
}

/** Names a meta expression refers to. */
export function references(e: Expr, into: Set<string> = new Set()): Set<string> {
  switch (e.k) {
    case 'ref': into.add(e.name); break;
    case 'not': case 'neg': references(e.a, into); break;
    case 'bin': references(e.a, into); references(e.b, into); break;
    default:
  }
  return into;
}

export function evaluate(e: Expr, value: (name: string) => number): number {
  switch (e.k) {
    case 'num': return e.v;
    case 'ref': return value(e.name);
    case 'not': return evaluate(e.a, value) ? 0 : 1;
    case 'neg': return -evaluate(e.a, value);
    case 'bin': {
      const a = evaluate(e.a, value);
      if (e.op === '&&') return a ? evaluate(e.b, value) : a;
      if (e.op === '||') return a ? a : evaluate(e.b, value);
      const b = evaluate(e.b, value);
      switch (e.op) {
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/': return b === 0 ? 0 : a / b;
        case '>': return a > b ? 1 : 0;
        case '>=': return a >= b ? 1 : 0;
        case '<': return a < b ? 1 : 0;
        case '<=': return a <= b ? 1 : 0;
        case '==': return a === b ? 1 : 0;
        case '!=': return a !== b ? 1 : 0;
      }
    }
  }
  return 0;
}
