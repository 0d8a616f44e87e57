/** Running system binaries with argument arrays (a shell only where a caller runs sh with a script of its own), with a time limit. */
import { spawn, spawnSync } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Standard input; without it the process reads /dev/null. */
  input?: string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Send standard output to /dev/null (the result's stdout is then ''): one pipe fewer to set up. */
  discardStdout?: boolean;
}

/** A process started before its input is known: it waits on stdin until `finish` gives it. */
export interface Started {
  /** Write the input, close stdin, and resolve with the exit code and output (rejects only if it could not start). Once: later calls only wait. */
  finish(input: string): Promise<RunResult>;
}

/** Start `cmd` with `args` now; its standard input follows later, through `finish`. */
export function start(cmd: string, args: string[], opts: Omit<RunOptions, 'input'> = {}): Started {
  return launch(cmd, args, opts, true);
}

/** Run `cmd` with `args`; resolves with its exit code and output, rejects only if it cannot start. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return launch(cmd, args, opts, opts.input !== undefined).finish(opts.input ?? '');
}

// Every pipe is a stream to set up and tear down, and spawning is what init and a CNI ADD spend
// most of their own time on: a stream is made only for what is written or read.
function launch(cmd: string, args: string[], opts: Omit<RunOptions, 'input'>, stdin: boolean): Started {
  const p = spawn(cmd, args, { stdio: [stdin ? 'pipe' : 'ignore', opts.discardStdout ? 'ignore' : 'pipe', 'pipe'], env: opts.env ?? process.env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const done = new Promise<RunResult>((resolve, reject) => {
    p.stdout?.on('data', (d) => out.push(d));
    p.stderr!.on('data', (d) => err.push(d));
    p.on('error', (e) => {
      settled = true;
      if (timer) clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
  // a process that cannot start rejects before anyone awaits it: that rejection is handled here
  // and reported when `finish` is called
  done.catch(() => {});
  p.stdin?.on('error', () => {});
  let given = false;
  return {
    finish(input: string) {
      if (given) return done;
      given = true;
      // the time limit counts from when the process has its input: until then it only waits
      // (not for a process that is already over, as one that could not start is; and the timer
      // alone never keeps the program alive: the running process does)
      if (opts.timeoutMs && !settled) timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs).unref();
      p.stdin?.end(input);
      return done;
    },
  };
}

/** Like run, but throws with the command's stderr when it exits non-zero. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** What runSync gives: the exit code, standard output and error, and each extra descriptor's output. */
export interface SyncResult extends RunResult {
  /** What the process wrote to descriptors 3, 4, …, in order. */
  extra: string[];
}

/**
 * Run `cmd` to its end, blocking, with `extra` more descriptors (3, 4, …) to write to, each read
 * whole. No stream is made for any of them: for a short process this costs a fraction of `run`'s
 * start-up, which is what an init container waits on. Throws only if it could not start.
 */
export function runSync(cmd: string, args: string[], opts: { extra?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): SyncResult {
  const extra = Array.from({ length: opts.extra ?? 0 }, () => 'pipe' as const);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', ...extra], encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
  if (r.error && r.status === null && r.signal === null) throw r.error;
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '', extra: (r.output ?? []).slice(3).map((o) => (o as string | null) ?? '') };
}
