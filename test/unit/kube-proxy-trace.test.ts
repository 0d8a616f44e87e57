/**
 * The trace engine on rules kube-proxy would write: every endpoint of a Service with its
 * probability, and a Linkerd pod calling its own ClusterIP — pod, node, and back into the pod —
 * as the seeds walk it by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, readObjects, toRuleset } from '../../src/mesh/kube-proxy/index';
import { linkerdRuleset, validateLinkerdFlags } from '../../src/mesh/linkerd';
import { defaultPodHost, hostFromText } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';

const POD = '10.244.0.13';
const service = (endpoints: string[], port = 80, target = 8080) => readObjects(`
apiVersion: v1
kind: Service
metadata: {namespace: default, name: web}
spec: {clusterIP: 10.96.0.10, ports: [{port: ${port}, targetPort: ${target}, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: default, name: web-x, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [${endpoints.map((a) => `{addresses: [${a}], conditions: {ready: true}}`).join(', ')}]
ports: [{port: ${target}, protocol: TCP}]
`, 'web.yaml');

/** A node: pods behind cni0 (10.244.0.1/24), its own address on eth0, forwarding on. */
const node = hostFromText({
  name: 'node-1',
  interfaces: [{ name: 'lo', addresses: ['127.0.0.1/8'] }, { name: 'eth0', addresses: ['192.168.0.2/24'] }, { name: 'cni0', addresses: ['10.244.0.1/24'] }],
  routes: [{ dst: 'default', via: '192.168.0.1', dev: 'eth0' }],
  forwarding: { ipv4: true },
});
const nodeRules = (endpoints: string[]) =>
  toRuleset(generate(service(endpoints), { hostname: 'node-1', nodeIPs: ['192.168.0.2'], clusterCidrs: ['10.244.0.0/16'] }));

test('all branches: a Service with three endpoints gives three outcomes of 1/3, one per endpoint', () => {
  const eps = ['10.244.0.21', '10.244.0.22', '10.244.0.23'];
  const engine = new Engine(node, [nodeRules(eps)]);
  const outcomes = engine.traceAll(parsePacketSpec('tcp 10.244.0.5:40000 -> 10.96.0.10:80 in cni0'));
  assert.equal(outcomes.length, 3);
  assert.deepEqual(outcomes.map((o) => o.result.packet.dst).sort(), eps);
  for (const o of outcomes) {
    assert.ok(Math.abs(o.probability - 1 / 3) < 1e-3, `probability ${o.probability}`);
    assert.equal(o.result.packet.dport, 8080);
    assert.equal(o.result.iface, 'cni0', 'forwarded back out to the pod network');
  }
  assert.ok(Math.abs(outcomes.reduce((s, o) => s + o.probability, 0) - 1) < 1e-9, 'the outcomes cover every case');
});

test('a Linkerd pod calling its own ClusterIP: proxy, node, back into the pod, proxy again, then the app', () => {
  const { options } = validateLinkerdFlags({
    incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: '2102',
    inboundPortsToIgnore: ['4190,4191,4567,4568'], outboundPortsToIgnore: ['4567,4568'],
  });
  const pod = defaultPodHost([
    { proto: 'tcp', port: 4143, uid: 2102, process: 'linkerd-proxy (inbound)' },
    { proto: 'tcp', port: 4140, uid: 2102, process: 'linkerd-proxy (outbound)' },
    { proto: 'tcp', port: 8080, uid: 1000, process: 'app' },
  ]);
  const podEngine = () => new Engine(pod, [linkerdRuleset(options!, 'ipv4')]);
  // 1. the app's connection to the ClusterIP goes to the proxy's outbound port
  const leg1 = podEngine().trace(parsePacketSpec('tcp -> 10.96.0.10:80 uid 1000'));
  assert.equal(leg1.result.disposition, 'local');
  assert.equal(leg1.result.socket?.port, 4140);
  assert.deepEqual(leg1.result.origDst, { addr: '10.96.0.10', port: 80 });
  // 2. the proxy (uid 2102) opens its own connection to the ClusterIP: it leaves the pod
  const leg2 = podEngine().trace(parsePacketSpec('tcp -> 10.96.0.10:80 uid 2102'));
  assert.equal(leg2.result.disposition, 'out');
  assert.equal(leg2.result.iface, 'eth0');
  assert.equal(leg2.result.packet.src, POD);
  // 3. the node DNATs it to the only endpoint — the pod itself — and masquerades the hairpin
  const leg3 = new Engine(node, [nodeRules([POD])]).trace(parsePacketSpec(`tcp ${POD}:${leg2.result.packet.sport} -> 10.96.0.10:80 in cni0`));
  assert.equal(leg3.result.iface, 'cni0');
  assert.equal(leg3.result.packet.dst, POD);
  assert.equal(leg3.result.packet.dport, 8080);
  assert.equal(leg3.result.packet.src, '10.244.0.1', 'KUBE-MARK-MASQ: the pod sees the node, so the reply comes back through it');
  // 4. back in the pod, the inbound side of the proxy takes it, with the app's address as original destination
  const back = leg3.result.packet;
  const leg4 = podEngine().trace(parsePacketSpec(`tcp ${back.src}:${back.sport} -> ${back.dst}:${back.dport} in eth0`));
  assert.equal(leg4.result.disposition, 'local');
  assert.equal(leg4.result.socket?.port, 4143);
  assert.deepEqual(leg4.result.origDst, { addr: POD, port: 8080 });
  // 5. the proxy hands it to the app on the pod IP: no redirect for its own uid
  const leg5 = podEngine().trace(parsePacketSpec(`tcp -> ${POD}:8080 uid 2102`));
  assert.equal(leg5.result.disposition, 'local');
  assert.equal(leg5.result.socket?.port, 8080);
  assert.equal(leg5.result.socket?.uid, 1000);
});
