/** Network namespaces: create, run inside, delete. Names are unique per process and call. */
import { randomBytes } from 'node:crypto';
import { run, runOk, type RunOptions, type RunResult } from './exec';

/** A fresh namespace name with the given prefix (≤ 15 characters in all, for veth names built from it). */
export function uniqueName(prefix = 'pt'): string {
  return `${prefix}-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`.slice(0, 24);
}

/** Create a namespace with loopback up. */
export async function createNetns(name: string): Promise<void> {
  await runOk('ip', ['netns', 'add', name]);
  await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Delete a namespace; succeeds if it is already gone. */
export async function deleteNetns(name: string): Promise<void> {
  const r = await run('ip', ['netns', 'del', name]);
  if (r.code !== 0 && !/No such file|does not exist/.test(r.stderr)) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
}

/** Run a command inside a namespace. */
export function inNetns(name: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', name, cmd, ...args], opts);
}

/** Run a command inside a namespace; throw on a non-zero exit. */
export function inNetnsOk(name: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return runOk('ip', ['netns', 'exec', name, cmd, ...args], opts);
}
