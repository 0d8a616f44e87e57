/**
 * The podtables CLI as a real process: bundled once per test process with the same esbuild
 * settings as `npm run build` (into node_modules/.cache, so `koffi` still resolves), then run with
 * argument arrays. Starting the bundle takes tens of milliseconds, which the kill and
 * concurrency tests need; going through tsx would take most of a second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, type RunResult } from '../../src/kernel/exec';

const ROOT = resolve(import.meta.dirname, '../..');
let bundle: Promise<string> | undefined;

/** Path of a bundle of src/cli/main.ts, built on first use and removed when the process exits. */
export function cliBundle(): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import('esbuild');
    const dir = join(ROOT, 'node_modules', '.cache', 'podtables-test');
    mkdirSync(dir, { recursive: true });
    const out = join(dir, `podtables-${process.pid}.mjs`);
    await build({
      entryPoints: [join(ROOT, 'src/cli/main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: out,
      external: ['koffi'],
      banner: { js: "import { createRequire as __ptCreateRequire } from 'node:module'; const require = __ptCreateRequire(import.meta.url);" },
      logLevel: 'error',
    });
    process.on('exit', () => rmSync(out, { force: true }));
    return out;
  })();
  return bundle;
}

/** The published entry, dist/podtables.cjs (npm test builds dist/ before the tests run). */
export function distEntry(): string {
  const entry = join(ROOT, 'dist/podtables.cjs');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build it with npm run build (npm test does)`);
  return entry;
}

let plugin: Promise<string> | undefined;
/**
 * The CNI plugin as `podtables cni install` puts it on a node (launcher, entry, plugin bundle, its
 * code cache and a copy of node), installed once per test process into a directory removed at exit.
 */
export function installedPlugin(): Promise<string> {
  plugin ??= (async () => {
    const root = mkdtempSync(join(tmpdir(), 'pt-cnibin-'));
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    const conf = join(root, 'plugin.json');
    writeFileSync(conf, JSON.stringify({ type: 'linkerd-cni', name: 'linkerd-cni' }));
    mkdirSync(join(root, 'net'));
    const r = await run(process.execPath, [distEntry(), 'cni', 'install', '--once', '--no-kubeconfig', '--plugin-config', conf,
      '--cni-bin-dir', join(root, 'bin'), '--cni-net-dir', join(root, 'net'), '--host-cni-net-dir', join(root, 'net')], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`cni install failed: ${r.stderr}`);
    return join(root, 'bin', 'linkerd-cni');
  })();
  return plugin;
}

/** Run `podtables ARGS` to completion. */
export async function podtables(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [await cliBundle(), ...args], { timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** Start `podtables ARGS` in its own process group (so the test can wait for its children too). */
export async function spawnPodtables(args: string[], prefix: string[] = []): Promise<ChildProcess> {
  const cmd = [...prefix, process.execPath, await cliBundle(), ...args];
  return spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
}

/** Resolve once no process of the group `pgid` is left (orphaned children included). */
export async function groupGone(pgid: number, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    if (Date.now() > end) throw new Error(`process group ${pgid} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
