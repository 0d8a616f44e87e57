/**
 * kube-proxy's rules on a real kernel: a node namespace routes to three endpoint pods (each its
 * own namespace behind a veth, addresses routed per pod as Calico does) and to an outside client.
 * Real TCP goes to a ClusterIP, a NodePort, an externalIP; the endpoint answers with its name and
 * the source address it saw, which shows where masquerade happened.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createNetns, deleteNetns, inNetns, inNetnsOk, uniqueName } from '../../src/kernel/netns';
import { generate, readObjects, renderNft, renderSave } from '../../src/mesh/kube-proxy/index';
import { needKernel, restore, type Backend } from '../support/kernel';

const NODE_IP = '192.168.50.1';
const CLIENT_IP = '192.168.50.2';
const PODS = [
  { name: 'ep1', ip: '10.244.0.11' },
  { name: 'ep2', ip: '10.244.0.12' },
  { name: 'ep3', ip: '10.244.0.13' },
];
const CLIENT_POD = { name: 'cpod', ip: '10.244.0.20' };

const OBJECTS = `
apiVersion: v1
kind: Service
metadata: {namespace: demo, name: web}
spec: {type: NodePort, clusterIP: 10.96.0.10, externalIPs: [192.168.60.10], ports: [{port: 80, nodePort: 30080, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: demo, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.11], nodeName: node}, {addresses: [10.244.0.12], nodeName: node}, {addresses: [10.244.0.13], nodeName: node}]
ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {namespace: demo, name: keep-source}
spec: {type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.11, ports: [{port: 80, nodePort: 30081}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: demo, name: keep-source-1, labels: {kubernetes.io/service-name: keep-source}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.11], nodeName: node}]
ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {namespace: demo, name: empty}
spec: {clusterIP: 10.96.0.20, ports: [{port: 80}]}
`;

/** Listens on :8080 and answers each connection with `NAME SOURCE-ADDRESS`. */
const SERVER = `const [name] = process.argv.slice(1);
require('net').createServer((s) => s.end(name + ' ' + s.remoteAddress.replace(/^::ffff:/, '') + '\\n')).listen(8080, '0.0.0.0', () => console.log('ready'));`;

/** Opens COUNT connections (PARALLEL at a time) and prints how many answers of each text and which errors came back. */
const CLIENT = `const [host, port, count, parallel] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
const net = require('net'); const out = {}; let started = 0, done = 0;
const one = () => { if (started >= count) return; started++;
  const s = net.connect({ host, port, timeout: 2000 }); let data = '';
  const fin = (k) => { out[k] = (out[k] || 0) + 1; s.destroy(); if (++done === count) console.log(JSON.stringify(out)); else one(); };
  s.on('data', (d) => (data += d)); s.on('end', () => fin(data.trim())); s.on('timeout', () => fin('ETIMEDOUT')); s.on('error', (e) => fin(e.code)); };
for (let i = 0; i < parallel; i++) one();`;

interface Cluster {
  node: string;
  client: string;
  pods: Map<string, string>;
}

async function sh(ns: string, ...cmds: string[][]): Promise<void> {
  for (const c of cmds) await inNetnsOk(ns, c[0], c.slice(1));
}

/** Build node, pods and client; tear everything down afterwards, also on failure. */
async function withCluster(backend: Backend | 'nftables-mode', fn: (c: Cluster) => Promise<void>): Promise<void> {
  const node = uniqueName('kpn');
  const client = uniqueName('kpc');
  const pods = new Map<string, string>();
  const made = [node, client];
  const servers: ChildProcess[] = [];
  try {
    await createNetns(node);
    await createNetns(client);
    // /proc/sys/net belongs to the writer's namespace; no procps needed.
    await sh(node, [process.execPath, '-e', "require('fs').writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')"]);
    await sh(node, ['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client]);
    await sh(node, ['ip', 'addr', 'add', `${NODE_IP}/24`, 'dev', 'ext0'], ['ip', 'link', 'set', 'ext0', 'up'], ['ip', 'route', 'add', 'default', 'via', CLIENT_IP]);
    await sh(client, ['ip', 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0'], ['ip', 'link', 'set', 'eth0', 'up'],
      ['ip', 'route', 'add', '10.96.0.0/12', 'via', NODE_IP], ['ip', 'route', 'add', '192.168.60.0/24', 'via', NODE_IP]);
    let i = 0;
    for (const p of [...PODS, CLIENT_POD]) {
      const ns = uniqueName('kpp');
      made.push(ns);
      pods.set(p.name, ns);
      await createNetns(ns);
      const veth = `vp${i++}`;
      await sh(node, ['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      // Every pod veth carries the gateway address, and each pod is reached by a /32 route.
      await sh(node, ['ip', 'addr', 'add', '10.244.0.1/32', 'dev', veth], ['ip', 'link', 'set', veth, 'up'], ['ip', 'route', 'add', `${p.ip}/32`, 'dev', veth]);
      await sh(ns, ['ip', 'addr', 'add', `${p.ip}/32`, 'dev', 'eth0'], ['ip', 'link', 'set', 'eth0', 'up'],
        ['ip', 'route', 'add', '10.244.0.1', 'dev', 'eth0'], ['ip', 'route', 'add', 'default', 'via', '10.244.0.1']);
    }
    const objs = readObjects(OBJECTS, 'cluster.yaml');
    const opts = { hostname: 'node', nodeIPs: [NODE_IP], clusterCidrs: ['10.244.0.0/16'] };
    const gen = generate(objs, opts);
    const r = backend === 'nftables-mode' ? await inNetns(node, 'nft', ['-f', '-'], { input: renderNft(gen, opts) }) : await restore(node, renderSave(gen), backend);
    assert.equal(r.code, 0, r.stderr);
    for (const p of PODS) servers.push(await startServer(pods.get(p.name)!, p.name));
    await fn({ node, client, pods });
  } finally {
    for (const s of servers) if (s.pid) process.kill(s.pid);
    for (const ns of made) await deleteNetns(ns);
  }
}

function startServer(ns: string, name: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout!.once('data', () => resolve(p));
    p.once('error', reject);
    p.once('exit', (c) => reject(new Error(`server ${name} exited ${c}`)));
  });
}

async function connect(ns: string, host: string, port: number, count: number, parallel = 50): Promise<Record<string, number>> {
  const out = await inNetnsOk(ns, process.execPath, ['-e', CLIENT, host, String(port), String(count), String(parallel)], { timeoutMs: 120_000 });
  return JSON.parse(out);
}

for (const backend of ['legacy', 'nft', 'nftables-mode'] as const) {
  test(`${backend}: TCP to the ClusterIP, NodePort and externalIP reaches the endpoints, masqueraded exactly where the rules say`, async (t: TestContext) => {
    if (!needKernel(t)) return;
    await withCluster(backend, async ({ client, pods }) => {
      const cpod = pods.get(CLIENT_POD.name)!;
      // From a pod: the pod CIDR is not masqueraded; 3,000 connections spread evenly.
      const n = 3000;
      const fromPod = await connect(cpod, '10.96.0.10', 80, n);
      const sd = Math.sqrt(n * (1 / 3) * (2 / 3));
      for (const p of PODS) {
        const got = fromPod[`${p.name} ${CLIENT_POD.ip}`] ?? 0;
        assert.ok(Math.abs(got - n / 3) <= 4 * sd, `${p.name} got ${got} of ${n} (expected ${n / 3} ± ${Math.round(4 * sd)}): ${JSON.stringify(fromPod)}`);
      }
      // From outside to the ClusterIP: not from the pod CIDR, so marked and masqueraded to the gateway.
      const outside = await connect(client, '10.96.0.10', 80, 30, 10);
      assert.deepEqual(Object.keys(outside).map((k) => k.split(' ')[1]).filter((v, i, a) => a.indexOf(v) === i), ['10.244.0.1'], JSON.stringify(outside));
      // NodePort and externalIP from outside: the EXT chain masquerades (Cluster policy).
      for (const [host, port] of [[NODE_IP, 30080], ['192.168.60.10', 80]] as const) {
        const res = await connect(client, host, port, 30, 10);
        const total = Object.entries(res).filter(([k]) => /^ep\d 10\.244\.0\.1$/.test(k)).reduce((s, [, v]) => s + v, 0);
        assert.equal(total, 30, `${host}:${port}: ${JSON.stringify(res)}`);
      }
      // externalTrafficPolicy Local keeps the client's address.
      assert.deepEqual(await connect(client, NODE_IP, 30081, 10, 5), { [`ep1 ${CLIENT_IP}`]: 10 });
      // A Service without endpoints is rejected (icmp-port-unreachable → ECONNREFUSED), not left to time out.
      assert.deepEqual(await connect(cpod, '10.96.0.20', 80, 5, 5), { ECONNREFUSED: 5 });
    });
  });
}
