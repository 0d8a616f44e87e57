/**
 * The generated rules against the kernel: loaded with iptables-restore (legacy and nft), read
 * back with iptables-save, they must come back byte for byte; kube-proxy's own expected dump,
 * loaded the same way, must give the fixture the unit tests compare with; the nftables form
 * must load with `nft -f`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inNetns } from '../../src/kernel/netns';
import { generate, readObjects, renderNft, renderPartialRestore, renderRestore, renderSave } from '../../src/mesh/kube-proxy/index';
import { needKernel, restore, save, withNetns, type Backend } from '../support/kernel';

const FIX = 'test/fixtures/kube-proxy';

/** Tables of a save text keyed by name (legacy and nft print them in different orders). */
function tables(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const block of text.split(/^(?=\*)/m)) if (block.startsWith('*')) m.set(block.split('\n')[0], block.trim());
  return m;
}

const MIXED = `
apiVersion: v1
kind: Service
metadata: {namespace: shop, name: cart}
spec:
  type: LoadBalancer
  clusterIPs: [10.96.5.5, "fd00:96::5"]
  externalTrafficPolicy: Local
  sessionAffinity: ClientIP
  healthCheckNodePort: 31999
  loadBalancerSourceRanges: [192.168.0.0/16, "2001:db8::/32"]
  ports: [{name: http, port: 80, nodePort: 30080}, {name: dns, port: 53, protocol: UDP, nodePort: 30053}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.9}, {ip: "2001:db8::9"}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: shop, name: cart-v4, labels: {kubernetes.io/service-name: cart}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.5], nodeName: n1}, {addresses: [10.244.2.5], nodeName: n2}, {addresses: [10.244.3.5], conditions: {ready: false, serving: true, terminating: true}, nodeName: n1}]
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: shop, name: cart-v6, labels: {kubernetes.io/service-name: cart}}
addressType: IPv6
endpoints: [{addresses: ["fd00:244::5"], nodeName: n1}, {addresses: ["fd00:244::6"], nodeName: n2}]
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {namespace: shop, name: internal}
spec: {clusterIPs: [10.96.5.6, "fd00:96::6"], internalTrafficPolicy: Local, externalIPs: [198.51.100.7, "2001:db8::7"], ports: [{port: 443}]}
`;

const OPTS = { hostname: 'n1', nodeIPs: ['192.168.3.3', '2001:db8::3'], clusterCidrs: ['10.244.0.0/16', 'fd00:244::/48'] };

for (const backend of ['legacy', 'nft'] as Backend[]) {
  for (const family of ['ipv4', 'ipv6'] as const) {
    test(`${backend} ${family}: iptables-save prints the generated node ruleset back unchanged (jumps, canaries, affinity, Local policies, source ranges)`, async (t: TestContext) => {
      if (!needKernel(t)) return;
      const gen = generate(readObjects(MIXED, 'mixed.yaml'), { ...OPTS, family });
      const ours = renderSave(gen);
      await withNetns(async (ns) => {
        const r = await restore(ns, ours, backend, family);
        assert.equal(r.code, 0, r.stderr);
        const kernel = tables(await save(ns, backend, family));
        for (const [name, text] of tables(ours)) assert.equal(kernel.get(name), text, `table ${name}`);
      }, 'kps');
    });
  }

  for (const dir of ['overall', 'repeated']) {
    test(`${backend}: kube-proxy's expected dump (${dir}) saves as the fixture, and our restore form loads to the same`, async (t: TestContext) => {
      if (!needKernel(t)) return;
      const expected = readFileSync(`${FIX}/${dir}/expected.save`, 'utf8');
      await withNetns(async (ns) => {
        const text = readFileSync(`${FIX}/${dir}/kube-proxy-expected.txt`, 'utf8').replace(/^#.*\n/gm, '');
        const r = await restore(ns, text, backend);
        assert.equal(r.code, 0, r.stderr);
        const kernel = tables(await save(ns, backend));
        for (const [name, body] of tables(expected)) assert.equal(kernel.get(name), body, `table ${name}`);
      }, 'kps');
      await withNetns(async (ns) => {
        const objs = readObjects(readFileSync(`${FIX}/${dir}/objects.yaml`, 'utf8'), 'objects.yaml');
        const gen = generate(objs, { hostname: 'test-node', nodeIPs: ['192.168.0.2'], clusterCidrs: ['10.0.0.0/8'], builtinJumps: false, canary: false, randomFully: false });
        // kube-proxy's own way: iptables-restore --noflush of its restore input.
        const r = await restore(ns, renderRestore(gen), backend, 'ipv4', ['--noflush']);
        assert.equal(r.code, 0, r.stderr);
        const kernel = tables(await save(ns, backend));
        for (const [name, body] of tables(expected)) assert.equal(kernel.get(name), body, `table ${name}`);
      }, 'kps');
    });
  }
}

/** MIXED after a sync's worth of changes: cart's IPv4 endpoints move and lose one, a Service is gone, another is new. */
const CHANGED = MIXED.replace('{addresses: [10.244.2.5], nodeName: n2}, ', '').replace('port: 8080}, {name: dns', 'port: 8081}, {name: dns')
  .replace(/---\napiVersion: v1\nkind: Service\nmetadata: \{namespace: shop, name: internal\}[^]*$/, '') +
  `---
apiVersion: v1
kind: Service
metadata: {namespace: shop, name: fresh}
spec: {type: NodePort, clusterIPs: [10.96.5.7, "fd00:96::7"], ports: [{port: 80, nodePort: 30090}]}
`;

for (const backend of ['legacy', 'nft'] as Backend[]) {
  for (const family of ['ipv4', 'ipv6'] as const) {
    test(`${backend} ${family}: a partial sync applied with --noflush over the previous sync leaves what a full load of the new one leaves`, async (t: TestContext) => {
      if (!needKernel(t)) return;
      const prev = generate(readObjects(MIXED, 'mixed.yaml'), { ...OPTS, family });
      const next = generate(readObjects(CHANGED, 'changed.yaml'), { ...OPTS, family });
      const partial = renderPartialRestore(prev, next);
      assert.ok(partial.length < renderRestore(next).length / 2, 'the partial sync is a fraction of a full one');
      await withNetns(async (ns) => {
        const full = await restore(ns, renderSave(prev), backend, family);
        assert.equal(full.code, 0, full.stderr);
        const r = await restore(ns, partial, backend, family, ['--noflush']);
        assert.equal(r.code, 0, r.stderr);
        const kernel = tables(await save(ns, backend, family));
        for (const [name, text] of tables(renderSave(next))) assert.equal(kernel.get(name), text, `table ${name}`);
      }, 'kps');
    });
  }
}

test('nft: the nftables form loads with nft -f, twice (a resync), for both families', async (t: TestContext) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const gen = generate(readObjects(MIXED, 'mixed.yaml'), { ...OPTS, family });
      const text = renderNft(gen, { ...OPTS, family });
      for (let i = 0; i < 2; i++) {
        const r = await inNetns(ns, 'nft', ['-f', '-'], { input: text });
        assert.equal(r.code, 0, r.stderr);
      }
      const listed = await inNetns(ns, 'nft', ['list', 'table', family === 'ipv4' ? 'ip' : 'ip6', 'kube-proxy']);
      assert.match(listed.stdout, /numgen random mod 2 vmap/);
      assert.match(listed.stdout, /masquerade fully-random/);
      assert.match(listed.stdout, /map service-ips/);
    }
  }, 'kps');
});
