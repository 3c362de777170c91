// The wire format of Postfix policy delegation (SMTPD_POLICY_README, "Protocol description"):
// a request is "name=value" lines ending in LF, closed by an empty line; the answer is
// "action=..." and an empty line; a connection carries any number of requests, one at a time.
// Hand-written: a line splitter and the caps below are all there is to it.
//
// Bounds (a client past one is cut off: there is no answer that would make sense of the rest):
// a line of 8 KiB (Postfix's longest attributes, certificate subjects and issuers, stay far
// below), 128 attributes in a request (Postfix 3.7 sends about 35), 64 KiB in all.

export const MAX_LINE = 8192;
export const MAX_ATTRIBUTES = 128;
export const MAX_REQUEST = 64 * 1024;

/** One request: its attributes, or why it could not be read (answered DUNNO, logged). */
export interface PolicyRequest {
  readonly attrs: ReadonlyMap<string, string>;
  /** The first fault found: a line not of the form name=value, an attribute given twice. */
  readonly malformed?: string;
}

/** The client went past a bound: the connection is closed. */
export class PolicyOverflow extends Error {}

const NAME = /^[a-z0-9_]{1,64}$/;

export class PolicyReader {
  private pending: Buffer = Buffer.alloc(0);
  private attrs = new Map<string, string>();
  private malformed?: string;
  private bytes = 0;

  /** Feeds bytes; returns the requests they complete (usually none or one). */
  push(chunk: Buffer): PolicyRequest[] {
    const out: PolicyRequest[] = [];
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      const lf = buf.indexOf(0x0a);
      if (lf < 0) break;
      if (lf > MAX_LINE) throw new PolicyOverflow(`a line longer than ${MAX_LINE} bytes`);
      this.bytes += lf + 1;
      if (this.bytes > MAX_REQUEST) throw new PolicyOverflow(`a request longer than ${MAX_REQUEST} bytes`);
      // Postfix writes LF; a hand-typed request (telnet, nc -C) may carry CR LF.
      const line = buf.subarray(0, lf).toString('utf8').replace(/\r$/, '');
      buf = buf.subarray(lf + 1);
      if (line === '') {
        out.push({ attrs: this.attrs, ...(this.malformed ? { malformed: this.malformed } : {}) });
        this.attrs = new Map();
        this.malformed = undefined;
        this.bytes = 0;
        continue;
      }
      this.line(line);
    }
    if (buf.length > MAX_LINE) throw new PolicyOverflow(`a line longer than ${MAX_LINE} bytes`);
    if (this.bytes + buf.length > MAX_REQUEST) throw new PolicyOverflow(`a request longer than ${MAX_REQUEST} bytes`);
    // A copy: the rest must not pin the (possibly large) chunk it came in.
    this.pending = Buffer.from(buf);
    return out;
  }

  /** True while a request is half read (for the log line of a client that goes away). */
  get partial(): boolean {
    return this.pending.length > 0 || this.attrs.size > 0 || this.malformed !== undefined;
  }

  private line(line: string): void {
    const eq = line.indexOf('=');
    const name = eq > 0 ? line.slice(0, eq) : '';
    if (!NAME.test(name)) {
      this.malformed ??= `not an attribute line: "${line.slice(0, 60)}"`;
      return;
    }
    if (this.attrs.has(name)) {
      this.malformed ??= `attribute ${name} given twice`;
      return;
    }
    if (this.attrs.size >= MAX_ATTRIBUTES) throw new PolicyOverflow(`more than ${MAX_ATTRIBUTES} attributes in a request`);
    this.attrs.set(name, line.slice(eq + 1));
  }
}

/** One answer on the wire. The action is one line: control characters cannot end it early. */
export function formatAnswer(action: string): string {
  return `action=${action.replace(/[\x00-\x1f\x7f]+/g, ' ').trim()}\n\n`;
}
