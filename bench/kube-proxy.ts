/**
 * Scale of `podtables kube-proxy`: generate the node rules for 10,000 Services × 2 endpoints and
 * 30,000 × 3, apply them with iptables-restore in a throwaway namespace (legacy and nft), and
 * compare a partial sync (one Service changed among 10,000) with a full one, as kube-proxy does.
 * Goals: generation ≤ 10% of apply time; peak memory ≤ 500 MB; partial sync ≤ 5% of a full sync.
 * Generation is timed as the CLI runs it: objects to the rule text to the save form, in a fresh
 * process of this file bundled as the CLI is bundled (esbuild, CommonJS, node20), with node's
 * default heap. Timed in this process instead, through tsx's transform, the same work took a
 * quarter longer (10,000 × 2: 310 ms against 250 in the bundle), the second case ran on code the
 * first had warmed, and the peak memory was this process's. The child writes the text to a
 * temporary file that this process applies, and is run three times per case.
 * Run as root: node --max-old-space-size=384 --import tsx bench/kube-proxy.ts
 * (the heap cap is for this process, which holds the texts and generates the partial-sync pair)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, deleteNetns, inNetns, uniqueName } from '../src/kernel/netns';
import { emptyObjects, generate, renderPartialRestore, renderRestore, renderSave, type KubeObjects } from '../src/mesh/kube-proxy/index';

/** Set in the bundled child: the case to generate, as JSON ({ n, e, out }). */
const CHILD = process.env.PODTABLES_BENCH_CHILD;

type Backend = 'legacy' | 'nft';

/** N ClusterIP Services with E ready endpoints each; `bump` moves one Service's endpoints. */
function cluster(n: number, e: number, bump = -1): KubeObjects {
  const objs = emptyObjects();
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    objs.services.push({
      kind: 'Service',
      metadata: { namespace: 'bench', name },
      spec: {
        type: 'ClusterIP', clusterIP: `10.${96 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
        externalIPs: [], externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', loadBalancerSourceRanges: [], sessionAffinity: 'None',
      },
    });
    objs.slices.push({
      kind: 'EndpointSlice',
      metadata: { namespace: 'bench', name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      endpoints: Array.from({ length: e }, (_, j) => ({ addresses: [`10.${128 + j}.${(i >> 8) & 255}.${i & 255}`], conditions: { ready: true }, nodeName: `n${j}` })),
      ports: [{ name: 'http', port: i === bump ? 8081 : 8080, protocol: 'TCP' }],
    });
  }
  return objs;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** CPU milliseconds of this thread alone (Linux schedstat): what other processes and V8's helper threads do not inflate. */
const threadCpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;

/** Wall, process CPU and main-thread CPU milliseconds of `fn`. */
function timed(fn: () => void): { wall: number; cpu: number; main: number } {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const m0 = threadCpu();
  fn();
  const c = process.cpuUsage(c0);
  return { wall: ms(t0), cpu: (c.user + c.system) / 1000, main: threadCpu() - m0 };
}

/** What one child reports about its generation. */
interface Generation {
  wall: number;
  cpu: number;
  main: number;
  /** The child's peak resident memory: the objects, the generator and the text. */
  rssMb: number;
}

/**
 * In the child: build the objects (not timed), then what `podtables kube-proxy` does between
 * reading the objects and writing its output: generate the rule text and cut the save form from
 * it. Objects are dropped once generated, and the chains once printed: only the text is left.
 */
function child(spec: string): void {
  const { n, e, out } = JSON.parse(spec) as { n: number; e: number; out: string };
  let objs: KubeObjects | undefined = cluster(n, e);
  let text = '';
  const t = timed(() => {
    const gen = generate(objs!);
    objs = undefined;
    text = renderSave(gen);
  });
  writeFileSync(out, text);
  const report: Generation = { ...t, rssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(report));
}

/** This file bundled as scripts/build.mjs bundles the CLI (CommonJS, which the yaml package needs as well). */
async function bundle(dir: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(dir, 'bench-kube-proxy.cjs');
  await build({ entryPoints: [import.meta.filename], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile, external: ['esbuild'], define: { 'import.meta.filename': '__filename' }, logLevel: 'warning' });
  return outfile;
}

/** Generate one case in a fresh child process of the bundle; the save text is left in `out`. */
function generateInChild(script: string, n: number, e: number, out: string): Generation {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, PODTABLES_BENCH_CHILD: JSON.stringify({ n, e, out }) }, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`generating child failed: ${r.stderr.slice(0, 2000)}`);
  return JSON.parse(r.stdout) as Generation;
}

async function apply(ns: string, backend: Backend, text: string, noflush = false): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await inNetns(ns, `iptables-${backend}-restore`, noflush ? ['--noflush'] : [], { input: text, timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`iptables-${backend}-restore: ${r.stderr.slice(0, 500)}`);
  return ms(t0);
}

async function median(n: number, fn: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await fn());
  return xs.sort((a, b) => a - b)[n >> 1];
}

async function inFreshNetns<T>(fn: (ns: string) => Promise<T>): Promise<T> {
  const ns = uniqueName('kpb');
  await createNetns(ns);
  try {
    return await fn(ns);
  } finally {
    await deleteNetns(ns);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/kube-proxy needs root (network namespaces)');
    process.exit(2);
  }
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')} on ${cpus().length} CPUs (wall times stretch under load; CPU times less so)`);
  const dir = mkdtempSync(join(tmpdir(), 'pt-kpb-'));
  try {
    const script = await bundle(dir);
    for (const [n, e] of [[10_000, 2], [30_000, 3]] as const) {
      // Three fresh processes: the median is what the ratios use; the spread shows the machine's load.
      const file = join(dir, `${n}x${e}.save`);
      const runs = [0, 1, 2].map(() => generateInChild(script, n, e, file));
      const mid = (f: (g: Generation) => number) => runs.map(f).sort((a, b) => a - b)[1];
      const wall = mid((g) => g.wall);
      const text = readFileSync(file, 'utf8');
      rmSync(file);
      let rules = 0;
      for (let i = text.indexOf('\n-A '); i >= 0; i = text.indexOf('\n-A ', i + 1)) rules++;
      const gen = `generate ${wall.toFixed(0)} ms (of ${runs.map((g) => g.wall.toFixed(0)).join(', ')}; cpu ${mid((g) => g.cpu).toFixed(0)} ms, main thread ${mid((g) => g.main).toFixed(0)} ms; peak RSS ${Math.max(...runs.map((g) => g.rssMb)).toFixed(0)} MB)`;
      for (const backend of ['legacy', 'nft'] as Backend[]) {
        const applyMs = await inFreshNetns((ns) => apply(ns, backend, text));
        console.log(`${n} × ${e}  ${backend.padEnd(6)}  ${rules} rules  ${gen}  apply ${applyMs.toFixed(0)} ms  generate/apply ${(100 * wall / applyMs).toFixed(1)}% (goal ≤ 10%)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Partial sync: one Service's endpoint port changes among 10,000. Both syncs are applied with
  // --noflush onto the loaded node, as kube-proxy applies them.
  const before = generate(cluster(10_000, 2));
  const after = generate(cluster(10_000, 2, 4242));
  const beforeText = renderSave(before);
  const full = renderRestore(after);
  const partial = renderPartialRestore(before, after);
  const count = (t: string) => t.split('\n').filter((l) => /^[-:]/.test(l)).length;
  for (const backend of ['legacy', 'nft'] as Backend[]) {
    await inFreshNetns(async (ns) => {
      await apply(ns, backend, beforeText);
      // iptables-nft-restore --noflush of a whole kube-proxy sync onto 10,000 Services took 319 s in
      // our first run (it flushes and refills 30,000 chains one netlink batch at a time), so for nft
      // the full sync is timed as a load of the same rules into a fresh namespace: a lower bound.
      const fullMs = backend === 'legacy' || process.env.BENCH_NFT_FULL_NOFLUSH ? await apply(ns, backend, full, true) : await inFreshNetns((fresh) => apply(fresh, backend, beforeText));
      const partMs = await apply(ns, backend, partial, true);
      // The floor of any --noflush restore on this node. iptables-legacy-restore fetches the whole
      // nat table for an input that changes nothing (libiptc parses the blob into its cache), and
      // replaces the whole table in the kernel as soon as one chain is rewritten, even unchanged.
      // iptables-nft-restore fetches nothing for the first, but the list of every chain for the
      // second (to tell a jump to a chain from a target).
      const fetch = await median(3, () => apply(ns, backend, '*nat\nCOMMIT\n', true));
      const rewrite = await median(3, () => apply(ns, backend, `*nat\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n`, true));
      const pct = (x: number) => `${(100 * x / fullMs).toFixed(1)}%`;
      console.log(`partial sync ${backend.padEnd(6)}  ${count(partial)} lines vs ${count(full)}  full ${fullMs.toFixed(0)} ms  partial ${partMs.toFixed(0)} ms  partial/full ${pct(partMs)} (goal ≤ 5%)  floor: no-op restore ${fetch.toFixed(0)} ms (${pct(fetch)}), one unchanged chain rewritten ${rewrite.toFixed(0)} ms (${pct(rewrite)})`);
    });
  }
  // The generator's own peak is the children's, printed with each case; this process holds the texts.
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(`peak memory of the benchmark process ${peak.toFixed(0)} MB (the generating children's is above; goal ≤ 500 MB)`);
}

if (CHILD) child(CHILD);
else
  main().catch((e) => {
    console.error(`bench/kube-proxy: ${e.message}`);
    process.exit(1);
  });
