/**
 * CNI ADD end to end — process start to answer, with the pod lookup over loopback and the rules
 * applied — against a bare `node -e 0` started the same way (by a launcher beside the plugin's,
 * which execs the same node with the same flag), in one run; the reference `bridge` plugin's ADD
 * beside it for scale. The plugin runs as `podtables cni install` puts it on a node (launcher,
 * entry, bundle, code cache, node). Run as root after a build (npm run build):
 *   node --import tsx bench/cni.ts [runs]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from '../src/kernel/exec';
import { installedPlugin } from '../test/support/cli';
import { CniNode, CNI_BIN } from '../test/support/cni-runtime';
import { pod, startFakeKube } from '../test/support/fake-kube';

const RUNS = Number(process.argv[2] ?? 15);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await run(cmd, args, { env, input, timeoutMs: 60_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stdout} ${r.stderr}`);
  return ms;
}

const plugin = await installedPlugin();
// the runtime starts the plugin through its launcher: the bare node is started by one like it
const bareLauncher = join(dirname(plugin), 'bare-node');
writeFileSync(bareLauncher, `#!/bin/sh\ncase $0 in */*) d="\${0%/*}" ;; *) d=. ;; esac\nexec "$d/${basename(plugin)}.d/node" --use-openssl-ca -e 0\n`, { mode: 0o755 });
if (!readFileSync(plugin, 'utf8').includes('exec "$d/node" --use-openssl-ca ')) throw new Error(`the plugin's launcher changed: update bench/cni.ts (${plugin})`);
const node = new CniNode();
const kube = await startFakeKube();
try {
  await node.up();
  kube.objects.set('/api/v1/namespaces/bench/pods/web', pod('bench', 'web', { containers: ['app', 'linkerd-proxy'] }));
  kube.objects.set('/api/v1/namespaces/bench', { kind: 'Namespace', metadata: { name: 'bench' } });
  const conf = (p: { result: unknown }) => JSON.stringify({
    cniVersion: '1.0.0', name: node.netName, type: 'linkerd-cni', log_level: 'warn', kubernetes: { kubeconfig: kube.kubeconfig },
    linkerd: { 'proxy-uid': 2102, 'inbound-ports-to-ignore': ['4190', '4191', '4567', '4568'], 'outbound-ports-to-ignore': ['4567', '4568'], 'iptables-mode': 'legacy' },
    prevResult: p.result,
  });
  const bare: number[] = [], add: number[] = [], bridge: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // the bridge plugin wires a fresh sandbox each time (that is what it does on ADD)
    const sb = await node.addSandbox(`s${i}`);
    bridge.push(sb.bridgeMs);
    const env = {
      PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: sb.id, CNI_NETNS: `/run/netns/${sb.ns}`, CNI_IFNAME: 'eth0',
      CNI_PATH: CNI_BIN, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=web',
    };
    bare.push(await timed(bareLauncher, [], env, conf(sb)));
    add.push(await timed(plugin, [], env, conf(sb)));
  }
  const b = median(bare), a = median(add), br = median(bridge);
  console.log(`runs: ${RUNS} (medians)`);
  console.log(`node -e 0 (launcher): ${b.toFixed(1)} ms`);
  console.log(`podtables cni ADD:    ${a.toFixed(1)} ms  (${(a - b).toFixed(1)} ms above node's own start-up; goal ≤ 40 ms)`);
  console.log(`bridge plugin ADD:    ${br.toFixed(1)} ms  (run through ip netns exec into the node namespace)`);
  console.log(`ratio ADD / node -e 0: ${(a / b).toFixed(2)}`);
} finally {
  await node.close();
  await kube.close();
}
