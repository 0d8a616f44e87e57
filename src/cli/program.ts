/**
 * Running the podtables command line with a given set of commands registered: the shared part of
 * the development entry (main.ts, every command) and the per-command bundles the build makes
 * (each registers only its own command, so a pod's init container loads only `init`).
 */
import type { Command } from 'commander';

/** Adds one command (or one mesh's subcommand) to the program. */
export type Register = (program: Command) => void;

/** An action read from a command line without commander, or undefined to let commander read it. */
export type QuickAction = (argv: readonly string[]) => (() => Promise<void>) | undefined;

/**
 * Parse `argv` with the given commands registered; resolves to the exit code. A `quick` reader
 * runs the command line it knows without loading commander (see flags.ts).
 */
export async function runCli(argv: string[], registers: Register[], quick?: QuickAction): Promise<number> {
  const action = quick?.(argv);
  if (action) {
    const { CliError } = await import('./io');
    return action().then(
      () => 0,
      (e) => failure(e, CliError),
    );
  }
  const [{ Command, CommanderError }, { CliError }] = await Promise.all([import('commander'), import('./io')]);
  const program = new Command();
  program
    .name('podtables')
    .description('Set up, trace and explain the packet paths of Kubernetes pods and nodes through Linux netfilter')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const register of new Set(registers)) register(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    return failure(e, CliError);
  }
}

/** A failed action's exit code, its message written: a CliError's own, or an internal error. */
function failure(e: unknown, CliError: typeof import('./io').CliError): number {
  if (e instanceof CliError) {
    process.stderr.write(`podtables: ${e.message}\n`);
    return e.exitCode;
  }
  process.stderr.write(`podtables: internal error: ${(e as Error).stack}\n`);
  return 70;
}

/** Run as the process's main: a reader that stops early (`| head`) is not an error, and the exit code is kept. */
export function startCli(run: () => Promise<number>): void {
  onStdoutCreated((out) =>
    out.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    }),
  );
  run().then((code) => {
    // an action may have set its own exit code (verify's drift, validate's missing rules)
    if (code !== 0) process.exitCode = code;
  });
}

/**
 * Call `fn` with process.stdout when something first uses it. Node builds that stream lazily and
 * it costs about 3 ms on a pipe; commands that write a few lines with writeOut never build it.
 */
function onStdoutCreated(fn: (out: NodeJS.WriteStream) => void): void {
  const own = Object.getOwnPropertyDescriptor(process, 'stdout');
  if (!own?.get || !own.configurable) return fn(process.stdout);
  const getter = own.get;
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: own.enumerable,
    get() {
      const out = getter.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, 'stdout', { configurable: true, enumerable: own.enumerable, get: getter });
      fn(out);
      return out;
    },
  });
}
