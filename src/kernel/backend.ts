/**
 * Which iptables binaries to run (legacy, nft, the distribution's default, or given paths), and
 * running them inside a network namespace named or given by path.
 */
import { run, runSync, start, type RunOptions, type RunResult, type Started, type SyncResult } from './exec';
import type { Family } from '../model/addr';

/** How the user chose the variant; `auto` looks at what the namespace already holds. */
export type BackendMode = 'legacy' | 'nft' | 'plain' | 'auto';

/** The two binaries an atomic apply needs, for one family. */
export interface Binaries {
  /** `legacy`, `nft`, `plain` or `custom`, for messages. */
  variant: string;
  save: string;
  restore: string;
}

/** Paths that replace the variant's binaries (`--firewall-bin-path`, `--firewall-save-bin-path`). */
export interface BinaryOverrides {
  bin?: string;
  save?: string;
}

const toV6 = (path: string): string => path.replace(/(^|\/)iptables([^/]*)$/, '$1ip6tables$2');

/** The binaries of a variant for a family; overrides name the IPv4 binaries and are mapped to ip6tables-*. */
export function binaries(variant: 'legacy' | 'nft' | 'plain', family: Family, over: BinaryOverrides = {}): Binaries {
  const base = variant === 'plain' ? 'iptables' : `iptables-${variant}`;
  let save = over.save ?? `${base}-save`;
  let restore = over.bin ? `${over.bin}-restore` : `${base}-restore`;
  if (family === 'ipv6') {
    save = toV6(save);
    restore = toV6(restore);
  }
  return { variant: over.bin || over.save ? 'custom' : variant, save, restore };
}

/** The path of a namespace: a name made by `ip netns add`, or a path such as /proc/PID/ns/net. */
export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/run/netns/${netns}`;
}

/**
 * The command line that runs `cmd` in the namespace (or here, when none is given): through
 * nsenter, as upstream does; `--` keeps BusyBox's nsenter from reading the command's own flags.
 */
function inNs(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netnsPath(netns)}`, '--', cmd, ...args]] : [cmd, args];
}

/** Run a binary in the namespace (or here). */
export function runIn(netns: string | undefined, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(...inNs(netns, cmd, args), opts);
}

/** Start a binary in the namespace (or here), to be given its standard input later. */
export function startIn(netns: string | undefined, cmd: string, args: string[], opts: Omit<RunOptions, 'input'> = {}): Started {
  return start(...inNs(netns, cmd, args), opts);
}

/** runSync in the namespace (or here). */
export function runInSync(netns: string | undefined, cmd: string, args: string[], opts: Parameters<typeof runSync>[2] = {}): SyncResult {
  return runSync(...inNs(netns, cmd, args), opts);
}

/** Whether a save dump holds anything beyond empty built-in chains with ACCEPT policies. */
export function holdsRules(dump: string): boolean {
  return dump.split('\n').some((l) => l.startsWith('-A ') || /^:\S+ (DROP|-) /.test(l));
}

/** Pick legacy or nft for `auto`: the one that already holds rules; a warning when both do. */
export async function detectVariant(netns: string | undefined, family: Family): Promise<{ variant: 'legacy' | 'nft'; warning?: string }> {
  const [legacy, nft] = await Promise.all(
    (['legacy', 'nft'] as const).map(async (v) => {
      const r = await runIn(netns, binaries(v, family).save, [], { timeoutMs: 30_000 }).catch(() => undefined);
      return !!r && r.code === 0 && holdsRules(r.stdout);
    }),
  );
  const fam = family === 'ipv6' ? 'ip6tables' : 'iptables';
  if (legacy && nft)
    return { variant: 'nft', warning: `both ${fam}-legacy and ${fam}-nft hold rules in this namespace; packets pass through both; using nft (choose with --iptables-mode)` };
  // with nothing there yet, legacy is upstream's default
  return { variant: nft ? 'nft' : 'legacy' };
}
