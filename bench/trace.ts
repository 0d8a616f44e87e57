/**
 * Full traces per second on kube-proxy-shaped node rulesets (iptables mode, nat table) of 1,000 and
 * 10,000 Services, against a peer measured in the same run: the same engine walking every chain
 * rule by rule, as the kernel walks KUBE-SERVICES. Rates are per CPU-second of this process.
 * Run: npx tsx bench/trace.ts [SECONDS_PER_CASE]
 */
import { hostFromText } from '../src/model/host';
import { Engine } from '../src/netfilter/engine';
import { parsePacketSpec, type PacketSpec } from '../src/netfilter/spec';
import { parseRestore } from '../src/syntax/restore';

const seconds = Number(process.argv[2] ?? 2);

/** A node's nat table for `n` ClusterIP Services of 1-3 endpoints, in the shape kube-proxy writes. */
function kubeProxyRules(n: number): string {
  const head = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-SERVICES - [0:0]', ':KUBE-NODEPORTS - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-MARK-MASQ - [0:0]'];
  const rules = [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0',
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ];
  for (let i = 0; i < n; i++) {
    const ip = `10.96.${i >> 8}.${i & 255}`;
    const svc = `KUBE-SVC-${i.toString(36).toUpperCase().padStart(16, 'S')}`;
    head.push(`:${svc} - [0:0]`);
    rules.push(`-A KUBE-SERVICES -d ${ip}/32 -p tcp -m comment --comment "ns${i % 50}/svc${i}:http cluster IP" -m tcp --dport 80 -j ${svc}`);
    rules.push(`-A ${svc} ! -s 10.244.0.0/16 -d ${ip}/32 -p tcp -m comment --comment "ns${i % 50}/svc${i}:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`);
    const eps = 1 + (i % 3);
    for (let k = 0; k < eps; k++) {
      const sep = `KUBE-SEP-${(i * 3 + k).toString(36).toUpperCase().padStart(16, 'E')}`;
      const ep = `10.244.${(i * 3 + k) >> 8 & 255}.${(i * 3 + k) & 255}`;
      head.push(`:${sep} - [0:0]`);
      const prob = k < eps - 1 ? ` -m statistic --mode random --probability ${(1 / (eps - k)).toFixed(11)}` : '';
      rules.push(`-A ${svc} -m comment --comment "ns${i % 50}/svc${i}:http -> ${ep}:8080"${prob} -j ${sep}`);
      rules.push(`-A ${sep} -s ${ep}/32 -m comment --comment "ns${i % 50}/svc${i}:http" -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep} -p tcp -m comment --comment "ns${i % 50}/svc${i}:http" -m tcp -j DNAT --to-destination ${ep}:8080`);
    }
  }
  rules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  return [...head, ...rules, 'COMMIT', ''].join('\n');
}

const node = hostFromText({
  name: 'node',
  interfaces: [{ name: 'eth0', addresses: ['10.0.0.10/24'] }, { name: 'cni0', addresses: ['10.244.0.1/24'] }],
  routes: [{ dst: 'default', via: '10.0.0.1', dev: 'eth0' }, { dst: '10.244.0.0/16', via: '10.0.0.11', dev: 'eth0' }],
  forwarding: { ipv4: true, ipv6: false },
});

/** Traces per second for `n` services, following random services from a pod and from the node. */
function measure(n: number, index: boolean): { perSec: number; rssMB: number } {
  const parsed = parseRestore(kubeProxyRules(n), { family: 'ipv4' });
  if (parsed.issues.some((i) => i.severity === 'error')) throw new Error(parsed.issues[0].message);
  const engine = new Engine(node, [parsed.ruleset], { index, assume: 'match' });
  const specs: PacketSpec[] = [];
  for (let i = 0; i < 512; i++) {
    const s = (i * 7919) % n;
    const dst = `10.96.${s >> 8}.${s & 255}:80`;
    specs.push(parsePacketSpec(i % 2 ? `tcp 10.244.0.${2 + (i % 200)}:${20000 + i} -> ${dst} in cni0` : `tcp -> ${dst} uid 1000`));
  }
  // warm up on the work the loop measures (first packets of new flows, the table cleared every 256; without
  // the clears most warm-up traces would reuse a flow and skip nat), then count CPU time (process.cpuUsage),
  // which other load on the machine inflates less than wall time
  for (let i = 0; i < 2048; i++) {
    engine.trace(specs[i & 511]);
    if ((i & 255) === 255) engine.flows.clear();
  }
  let done = 0, peak = 0;
  const end = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  while (performance.now() < end) {
    for (let i = 0; i < 256; i++) engine.trace(specs[(done + i) & 511]);
    done += 256;
    engine.flows.clear();
    if ((done & 8191) === 0) peak = Math.max(peak, process.memoryUsage().rss);
  }
  const cpu = process.cpuUsage(cpu0);
  peak = Math.max(peak, process.memoryUsage().rss);
  return { perSec: done / ((cpu.user + cpu.system) / 1e6), rssMB: peak / 2 ** 20 };
}

const rows: string[] = [];
const results: Record<string, number> = {};
for (const n of [1000, 10000]) {
  const fast = measure(n, true);
  const walk = measure(n, false);
  results[n] = fast.perSec;
  rows.push(`${String(n).padStart(6)} services: ${Math.round(fast.perSec).toLocaleString('en').padStart(9)} traces/s indexed, ${Math.round(walk.perSec).toLocaleString('en').padStart(9)} walking rule by rule (×${(fast.perSec / walk.perSec).toFixed(1)}), peak RSS ${Math.round(fast.rssMB)} MB`);
}
rows.push(`growth 1k → 10k: ×${(results[1000] / results[10000]).toFixed(2)} slower (goal ≤ 1.5); goal ≥ 100,000 traces/s at 10k: ${results[10000] >= 100_000 ? 'met' : 'not met'}`);
process.stdout.write(rows.join('\n') + '\n');
