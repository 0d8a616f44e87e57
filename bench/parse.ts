/**
 * Reading a kube-proxy-sized dump: podtables' parse + canonical print (parseRestore, saveRuleset)
 * against `iptables-restore --test` of the legacy and nft backends on the same file, in the same
 * run, in a fresh namespace. The dump has 10,000 Services shaped as kube-proxy writes them
 * (KUBE-SERVICES, KUBE-SVC-* with statistic, KUBE-SEP-* with DNAT, KUBE-MARK-MASQ with MARK,
 * comments everywhere): about 110,000 rules and 16 MB. Goals: ≤ 0.5× iptables-restore's time and
 * ≤ 300 MB peak memory. podtables runs in a child process, bundled as the CLI is, so that its peak
 * RSS is its own.
 * Usage: node --import tsx bench/parse.ts [services] [rounds]   (root for the iptables peers)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseRestore } from '../src/syntax/restore';
import { saveRuleset } from '../src/syntax/save';

const CHILD = process.env.PODTABLES_BENCH_CHILD;

/** kube-proxy's chain names are a hash of the service; any 16 characters of [A-Z0-9] do. */
const hash = (prefix: string, n: number): string => `${prefix}-${(n * 2654435761 >>> 0).toString(36).toUpperCase().padStart(7, '0')}${n.toString(36).toUpperCase().padStart(9, '0')}`;

/** A kube-proxy-shaped nat and filter dump with `services` Services of 1–5 endpoints (3 on average). */
export function kubeDump(services: number): string {
  const chains: string[] = [];
  const rules: string[] = [];
  for (let s = 0; s < services; s++) {
    const ns = `ns${s % 97}`;
    const name = `svc-${s}`;
    const ip = `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`;
    const port = 80 + (s % 7);
    const svc = hash('KUBE-SVC', s);
    const id = `${ns}/${name}:http`;
    chains.push(`:${svc} - [0:0]`);
    rules.push(`-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "${id} cluster IP" -m tcp --dport ${port} -j ${svc}`);
    rules.push(`-A ${svc} ! -s 10.244.0.0/16 -d ${ip}/32 -p tcp -m comment --comment "${id} cluster IP" -m tcp --dport ${port} -j KUBE-MARK-MASQ`);
    const eps = 1 + ((s * 7) % 5);
    for (let e = 0; e < eps; e++) {
      const sep = hash('KUBE-SEP', s * 8 + e);
      const ep = `10.244.${(s * 8 + e) >> 8 & 255}.${(s * 8 + e) & 255}`;
      chains.push(`:${sep} - [0:0]`);
      const left = eps - e;
      const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
      rules.push(`-A ${svc} -m comment --comment "${id} -> ${ep}:8080"${stat} -j ${sep}`);
      rules.push(`-A ${sep} -s ${ep}/32 -m comment --comment ${id} -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep} -p tcp -m comment --comment ${id} -m tcp -j DNAT --to-destination ${ep}:8080`);
    }
  }
  return [
    '*filter',
    ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':KUBE-FORWARD - [0:0]', ':KUBE-SERVICES - [0:0]',
    '-A INPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
    'COMMIT',
    '*nat',
    ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-MARK-MASQ - [0:0]', ':KUBE-NODEPORTS - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-SERVICES - [0:0]',
    ...chains,
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ...rules,
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    'COMMIT',
    '',
  ].join('\n');
}

/** In the child: parse and print the file once, report time and peak memory as JSON. */
function child(file: string): void {
  const text = readFileSync(file, 'utf8');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = parseRestore(text, { family: 'ipv4' });
  const t1 = performance.now();
  const out = saveRuleset(res.ruleset);
  const t2 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const errors = res.issues.filter((i) => i.severity === 'error');
  const rules = res.ruleset.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
  process.stdout.write(JSON.stringify({ parseMs: t1 - t0, printMs: t2 - t1, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024, rules, outBytes: out.length, errors: errors.slice(0, 3) }));
}

/**
 * This file bundled as the CLI is (scripts/build.mjs: esbuild, ESM, node20), so that podtables is
 * timed as users run it rather than through tsx's on-the-fly transform.
 */
async function bundle(dir: string): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = join(dir, 'bench-parse.mjs');
  await build({ entryPoints: [import.meta.filename], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile, logLevel: 'warning' });
  return outfile;
}

function ours(script: string, file: string): { parseMs: number; printMs: number; cpuMs: number; maxRssMb: number; rules: number; outBytes: number; errors: unknown[] } {
  const r = spawnSync(process.execPath, [script], { env: { ...process.env, PODTABLES_BENCH_CHILD: file }, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`podtables child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Wall time of `iptables-<backend>-restore --test FILE` in namespace `ns`, in ms. */
function peer(ns: string, backend: string, file: string): number {
  const t0 = performance.now();
  const r = spawnSync('ip', ['netns', 'exec', ns, `iptables-${backend}-restore`, '--test', file], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`iptables-${backend}-restore --test: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const services = Number(process.argv[2] ?? 10_000);
  const rounds = Number(process.argv[3] ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'pt-bench-'));
  const file = join(dir, 'kube-proxy.save');
  const text = kubeDump(services);
  writeFileSync(file, text);
  const script = await bundle(dir);
  console.log(`dump: ${services} services, ${(text.length / 1e6).toFixed(1)} MB, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
  const root = process.getuid?.() === 0;
  const ns = `ptb-${process.pid.toString(36)}`;
  if (root) spawnSync('ip', ['netns', 'add', ns]);
  try {
    const mine: ReturnType<typeof ours>[] = [];
    const legacy: number[] = [];
    const nft: number[] = [];
    for (let r = 0; r < rounds; r++) {
      mine.push(ours(script, file));
      if (root) {
        legacy.push(peer(ns, 'legacy', file));
        nft.push(peer(ns, 'nft', file));
      }
    }
    const m = mine[mine.length - 1];
    if (m.errors.length) console.log('podtables reported errors:', m.errors);
    const total = median(mine.map((x) => x.parseMs + x.printMs));
    // the median is what the ratios use; the fastest round shows how much of it was the machine's load
    const fastest = Math.min(...mine.map((x) => x.parseMs + x.printMs));
    console.log(`podtables parse + print: ${total.toFixed(0)} ms (fastest ${fastest.toFixed(0)}; parse ${median(mine.map((x) => x.parseMs)).toFixed(0)}, print ${median(mine.map((x) => x.printMs)).toFixed(0)}; CPU ${median(mine.map((x) => x.cpuMs)).toFixed(0)} ms), ${m.rules} rules, peak RSS ${Math.max(...mine.map((x) => x.maxRssMb)).toFixed(0)} MB (goal ≤ 300)`);
    if (!root) {
      console.log('not root: iptables-restore --test needs a namespace; no ratio measured');
      return;
    }
    for (const [name, xs] of [['legacy', legacy], ['nft', nft]] as const) {
      const peerMs = median(xs);
      console.log(`iptables-${name}-restore --test: ${peerMs.toFixed(0)} ms; ratio podtables/${name} = ${(total / peerMs).toFixed(2)} (goal ≤ 0.5)`);
    }
  } finally {
    if (root) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (CHILD) child(CHILD);
else if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) await main();
