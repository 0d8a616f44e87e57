/** Reading inputs and reporting issues at the CLI edge. */
import { readFileSync, writeSync } from 'node:fs';
import { formatIssue, type Issue } from '../model/issue';

/** A user-facing failure: printed as its message, exit code 2 by default. */
export class CliError extends Error {
  constructor(message: string, public exitCode = 2) {
    super(message);
  }
}

/**
 * Write to standard output (1) or error (2) with write(2) itself. Node's process.stdout and
 * stderr build a stream the first time they are used, about 3 ms for a pipe, which a pod's init
 * container and a CNI ADD pay once each; these few lines do not need one. A pipe another reader
 * made non-blocking (EAGAIN) gets the rest through the stream, in order; a reader gone (EPIPE)
 * ends the process as the stream's handler would.
 */
export function writeOut(fd: 1 | 2, text: string): void {
  let buf = Buffer.from(text, 'utf8');
  try {
    while (buf.length) buf = buf.subarray(writeSync(fd, buf));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (code !== 'EAGAIN') throw e;
    (fd === 1 ? process.stdout : process.stderr).write(buf);
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
