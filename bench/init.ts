/**
 * Start-up cost of `podtables init linkerd`, whole-process wall time, each figure against a peer
 * measured in the same run (medians of interleaved rounds, each round in a fresh namespace):
 *  1. chart defaults (both families) vs a bare `node -e 0` started the same way — the time
 *     podtables adds above the runtime's own start-up (goal ≤ 25 ms). Both run inside the fresh
 *     namespace (started through `nsenter --net`), as an init container runs inside its pod's:
 *     the chart's flags name no namespace. The same with `--netns` from outside (each iptables
 *     process then goes through nsenter, as upstream's --netns does) is shown beside it;
 *  2. a large configuration (500 ignored ports as single ports and ranges, 100 subnets) vs a
 *     shell script applying the same rules one iptables command per rule, each through
 *     `nsenter --net`, as upstream does with --netns (goal ≤ 0.25×).
 * Needs root. Usage: npx tsx bench/init.ts [rounds]   (builds dist/ first, and runs the published entry)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CHART_DEFAULT_ARGS, linkerdPlan, validateLinkerdFlags } from '../src/mesh/linkerd';
import { saveRuleSpec } from '../src/syntax/save';
import { tokenize } from '../src/syntax/tokenize';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/podtables.cjs');
const rounds = Number(process.argv[2] ?? 15);

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Wall time of one process from spawn to exit, and the CPU time of it and its children (from wait4, through time(1)), in ms. */
const HAVE_TIME = existsSync('/usr/bin/time'); // Debian package `time`; without it, wall times only
// Every process runs in the environment a pod's init container has: without NODE_EXTRA_CA_CERTS,
// which some machines set and which makes node read a CA bundle at start-up (about 45 ms here),
// and with the image's PATH (node:20-bookworm-slim, the Dockerfile's base): a long PATH of a
// developer's machine costs a failed exec per entry for every program looked up (sh, the
// restore, the save), about 1 ms in all.
const { NODE_EXTRA_CA_CERTS: _extraCerts, ...rest } = process.env;
const ENV = { ...rest, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
function timed(cmd: string, args: string[]): { wall: number; cpu: number } {
  const t0 = process.hrtime.bigint();
  const argv = HAVE_TIME ? ['/usr/bin/time', '-f', 'cpu %U %S', cmd, ...args] : [cmd, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: ENV });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 4).join(' ')}…: exit ${r.status}: ${r.stderr}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { wall, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Run `fn` in a fresh namespace that is deleted afterwards. */
function inFreshNetns<T>(fn: (ns: string) => T): T {
  const ns = `ptb-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  sh('ip', ['netns', 'add', ns]);
  try {
    return fn(ns);
  } finally {
    sh('ip', ['netns', 'del', ns]);
  }
}

/** The large configuration's flags. */
function largeArgs(): string[] {
  const ports: string[] = [];
  for (let i = 0; i < 500; i++) ports.push(i % 4 === 3 ? `${20000 + i * 10}-${20005 + i * 10}` : `${10000 + i}`);
  const subnets: string[] = [];
  for (let i = 0; i < 80; i++) subnets.push(`10.${i}.0.0/16`);
  for (let i = 0; i < 20; i++) subnets.push(`fd00:${i.toString(16)}::/32`);
  return ['-p', '4143', '-o', '4140', '-u', '2102', '--inbound-ports-to-ignore', ports.join(','), '--outbound-ports-to-ignore', ports.slice(0, 250).join(','), '--subnets-to-ignore', subnets.join(',')];
}

/** The same rules as a shell script of one iptables command per rule (upstream's way). */
function perRuleScript(args: string[], variant: 'legacy' | 'nft'): string {
  const pick = (flag: string) => args[args.indexOf(flag) + 1];
  const res = validateLinkerdFlags({
    incomingProxyPort: pick('-p'), outgoingProxyPort: pick('-o'), proxyUid: pick('-u'),
    inboundPortsToIgnore: [pick('--inbound-ports-to-ignore')], outboundPortsToIgnore: [pick('--outbound-ports-to-ignore')], subnetsToIgnore: [pick('--subnets-to-ignore')],
  });
  const lines = ['set -e'];
  for (const family of ['ipv4', 'ipv6'] as const) {
    // with --netns, upstream wraps every command in `nsenter --net=NS --`; so do we, with the same flag
    const bin = `nsenter --net="$1" -- ${family === 'ipv4' ? 'iptables' : 'ip6tables'}-${variant}`;
    const plan = linkerdPlan(res.options!, family);
    const q = (spec: string) => tokenize(spec).tokens.map((t) => `'${t.text.replace(/'/g, "'\\''")}'`).join(' ');
    // upstream reads the nat table first and prints it again at the end
    lines.push(`${bin}-save -t nat >/dev/null`);
    for (const c of plan.chains) {
      lines.push(`${bin} -t nat -N ${c.name}`);
      for (const r of c.rules) lines.push(`${bin} -t nat -A ${c.name} ${q(saveRuleSpec(r, { family, numeric: true }))}`);
    }
    for (const j of plan.jumps) lines.push(`${bin} -t nat -A ${j.from} ${q(saveRuleSpec(j.rule, { family, numeric: true }))}`);
    lines.push(`${bin}-save -t nat >/dev/null`);
  }
  return lines.join('\n') + '\n';
}

if (process.getuid?.() !== 0) {
  console.error('bench/init.ts needs root (network namespaces)');
  process.exit(1);
}
sh(process.execPath, [join(ROOT, 'scripts/build.mjs')]);
const large = largeArgs();
const scripts = { legacy: join(tmpdir(), `podtables-bench-${process.pid}-legacy.sh`), nft: join(tmpdir(), `podtables-bench-${process.pid}-nft.sh`) };
for (const v of ['legacy', 'nft'] as const) writeFileSync(scripts[v], perRuleScript(large, v));
type Sample = { wall: number; cpu: number };
const t = { node: [] as Sample[], init: [] as Sample[], nodeOut: [] as Sample[], initNetns: [] as Sample[], large: [] as Sample[], shell: [] as Sample[], largeNft: [] as Sample[], shellNft: [] as Sample[] };
/** A command run inside the namespace, as a pod's own process runs. */
const inside = (ns: string, argv: string[]): [string, string[]] => ['nsenter', [`--net=/run/netns/${ns}`, '--', ...argv]];
try {
  // warm the page cache and the kernel modules once
  inFreshNetns((ns) => timed(...inside(ns, [process.execPath, CLI, 'init', 'linkerd', ...CHART_DEFAULT_ARGS])));
  for (let i = 0; i < rounds; i++) {
    t.node.push(inFreshNetns((ns) => timed(...inside(ns, [process.execPath, '-e', '0']))));
    t.init.push(inFreshNetns((ns) => timed(...inside(ns, [process.execPath, CLI, 'init', 'linkerd', ...CHART_DEFAULT_ARGS]))));
    t.nodeOut.push(timed(process.execPath, ['-e', '0']));
    t.initNetns.push(inFreshNetns((ns) => timed(process.execPath, [CLI, 'init', 'linkerd', ...CHART_DEFAULT_ARGS, '--netns', ns])));
    if (i < Math.max(3, Math.floor(rounds / 3))) {
      t.large.push(inFreshNetns((ns) => timed(process.execPath, [CLI, 'init', 'linkerd', ...large, '--netns', ns])));
      t.shell.push(inFreshNetns((ns) => timed('sh', [scripts.legacy, `/run/netns/${ns}`])));
      t.largeNft.push(inFreshNetns((ns) => timed(process.execPath, [CLI, 'init', 'linkerd', ...large, '--iptables-mode', 'nft', '--netns', ns])));
      t.shellNft.push(inFreshNetns((ns) => timed('sh', [scripts.nft, `/run/netns/${ns}`])));
    }
  }
} finally {
  for (const f of Object.values(scripts)) rmSync(f, { force: true });
}
const w = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.wall))])) as Record<keyof typeof t, number>;
const c = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.cpu))])) as Record<keyof typeof t, number>;
const rules = perRuleScript(large, 'legacy').split('\n').length - 2; // commands, `set -e` and the final newline aside
const f = (x: number) => x.toFixed(1).padStart(8);
const r = (a: number, b: number) => (a / b).toFixed(3).padStart(8);
console.log('                                                   wall ms   cpu ms (process + children)');
console.log(`in the namespace: node -e 0                      ${f(w.node)} ${f(c.node)}`);
console.log(`  init linkerd, chart defaults (v4+v6, legacy)   ${f(w.init)} ${f(c.init)}`);
console.log(`  above the runtime's start-up (goal <= 25)      ${f(w.init - w.node)} ${f(c.init - c.node)}`);
console.log(`from outside: node -e 0                          ${f(w.nodeOut)} ${f(c.nodeOut)}`);
console.log(`  init linkerd, chart defaults, --netns NS       ${f(w.initNetns)} ${f(c.initNetns)}`);
console.log(`  above the runtime's start-up                   ${f(w.initNetns - w.nodeOut)} ${f(c.initNetns - c.nodeOut)}`);
console.log(`500 ports + 100 subnets, legacy: init linkerd    ${f(w.large)} ${f(c.large)}`);
console.log(`  one iptables-legacy command per rule (${rules})  ${f(w.shell)} ${f(c.shell)}`);
console.log(`  ratio (goal <= 0.25)                           ${r(w.large, w.shell)} ${r(c.large, c.shell)}`);
console.log(`500 ports + 100 subnets, nft: init linkerd       ${f(w.largeNft)} ${f(c.largeNft)}`);
console.log(`  one iptables-nft command per rule (${rules})     ${f(w.shellNft)} ${f(c.shellNft)}`);
console.log(`  ratio (goal <= 0.25)                           ${r(w.largeNft, w.shellNft)} ${r(c.largeNft, c.shellNft)}`);
console.log(`medians of ${rounds} rounds (large: ${t.large.length}); load average ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs`);
