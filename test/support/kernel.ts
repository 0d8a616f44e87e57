/**
 * The kernel test harness: namespaces that are always deleted, rulesets loaded with either
 * backend, and the kernel's own save, -S and -L output read back.
 * On CI (CI=true) a missing capability is a failure; elsewhere the test skips and says why.
 */
import type { TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createNetns, deleteNetns, inNetns, inNetnsOk, uniqueName } from '../../src/kernel/netns';

export type Backend = 'legacy' | 'nft';

let cached: string | null | undefined;
/** Why kernel tests cannot run here, or null when they can. */
export function kernelUnavailable(): string | null {
  if (cached !== undefined) return cached;
  if (process.getuid?.() !== 0) return (cached = 'kernel tests need root (network namespaces)');
  for (const bin of ['ip', 'iptables-legacy-restore', 'iptables-nft-restore', 'ip6tables-legacy-restore', 'ip6tables-nft-restore']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return (cached = `${bin} is not installed (apt-get install iptables iproute2)`);
    }
  }
  return (cached = null);
}

/** Skip (or, on CI, fail) when the kernel cannot be used; returns true when the test may go on. */
export function needKernel(t: TestContext): boolean {
  const why = kernelUnavailable();
  if (!why) return true;
  if (process.env.CI === 'true') throw new Error(`kernel test cannot run on CI: ${why}`);
  t.skip(why);
  return false;
}

/** Run `fn` with a fresh namespace that is deleted afterwards, also on failure. */
export async function withNetns<T>(fn: (ns: string) => Promise<T>, prefix = 'pt'): Promise<T> {
  const ns = uniqueName(prefix);
  await createNetns(ns);
  try {
    return await fn(ns);
  } finally {
    await deleteNetns(ns);
  }
}

const bin = (b: Backend, family: 'ipv4' | 'ipv6', tool: string) => `${family === 'ipv6' ? 'ip6' : 'ip'}tables-${b}${tool}`;

/** Load a ruleset with iptables-restore of the given backend; resolves with exit code and stderr. */
export async function restore(ns: string, text: string, b: Backend, family: 'ipv4' | 'ipv6' = 'ipv4', args: string[] = []) {
  return inNetns(ns, bin(b, family, '-restore'), args, { input: text, timeoutMs: 60_000 });
}

/** The kernel's iptables-save output without the `#` lines. */
export async function save(ns: string, b: Backend, family: 'ipv4' | 'ipv6' = 'ipv4', args: string[] = []): Promise<string> {
  const out = await inNetnsOk(ns, bin(b, family, '-save'), args, { timeoutMs: 60_000 });
  return out.split('\n').filter((l) => !l.startsWith('#')).join('\n');
}

/** Run `iptables ARGS` (e.g. `-t nat -S`, `-L -n -v`) of a backend inside the namespace. */
export async function iptables(ns: string, b: Backend, args: string[], family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<string> {
  return inNetnsOk(ns, bin(b, family, ''), args, { timeoutMs: 60_000 });
}
