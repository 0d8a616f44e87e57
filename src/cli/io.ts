/** Reading inputs and reporting issues at the CLI edge. */
import { readFileSync } from 'node:fs';
import { formatIssue, type Issue } from '../model/issue';

/** A user-facing failure: printed as its message, exit code 2 by default. */
export class CliError extends Error {
  constructor(message: string, public exitCode = 2) {
    super(message);
  }
}

/** Read a file, or standard input for `-`. */
export function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError(`${file}: cannot read: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
}

/** Print warnings to stderr; throw a CliError naming the first error, with its place. */
export function report(issues: Issue[], file: string, text: string): void {
  const lines = text.split('\n');
  for (const i of issues) if (i.severity === 'warning') process.stderr.write(formatIssue(i, file, undefined) + '\n');
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length) throw new CliError(errors.map((e) => formatIssue(e, file, lines)).join('\n'));
}
