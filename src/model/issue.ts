/** Problems found in user input, as data; only the CLI turns them into text and exit codes. */

/** One problem with its place in the input. */
export interface Issue {
  severity: 'error' | 'warning';
  /** Stable identifier, e.g. `unknown-option`, `unknown-extension`, `listing-lossy`. */
  code: string;
  message: string;
  /** 1-based line and column in the input, when there is one. */
  line?: number;
  column?: number;
  extension?: string;
  option?: string;
}

/** A user error that stops an operation; carries its issues. */
export class InputError extends Error {
  constructor(public issues: Issue[]) {
    super(issues.map((i) => i.message).join('; '));
  }
}

/** Format an issue as `FILE:LINE:COL: message`, with the offending line and a caret under it. */
export function formatIssue(i: Issue, file: string, source?: string[]): string {
  const where = [file, i.line, i.line !== undefined ? i.column : undefined].filter((x) => x !== undefined).join(':');
  let s = `${where}: ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}`;
  if (source && i.line !== undefined && source[i.line - 1] !== undefined) {
    const text = source[i.line - 1].replace(/\r$/, '');
    if (text.length <= 400) {
      s += `\n    ${text}`;
      if (i.column !== undefined) s += `\n    ${' '.repeat(Math.max(0, i.column - 1))}^`;
    }
  }
  return s;
}
