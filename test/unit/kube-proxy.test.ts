import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { emptyObjects, endpointChainName, generate, readObjects, renderPartialRestore, renderRestore, renderSave, serviceChainNames } from '../../src/mesh/kube-proxy/index';
import { savedProbability } from '../../src/mesh/kube-proxy/marks';

const FIX = 'test/fixtures/kube-proxy';
/** The node of kube-proxy's own unit tests (NewFakeProxier): no nfacct, no --random-fully. */
const TEST_NODE = { hostname: 'test-node', nodeIPs: ['192.168.0.2'], clusterCidrs: ['10.0.0.0/8'], builtinJumps: false, canary: false, randomFully: false };

const objects = (yaml: string) => readObjects(yaml, 'test.yaml');
const save = (yaml: string, o: Parameters<typeof generate>[1] = {}) => renderSave(generate(objects(yaml), { builtinJumps: false, canary: false, ...o }));
const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l));

const svc = (name: string, spec: string, status = '') => `---\napiVersion: v1\nkind: Service\nmetadata: {namespace: ns, name: ${name}}\nspec: ${spec}\n${status}`;
const slice = (name: string, body: string) =>
  `---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {namespace: ns, name: ${name}-x, labels: {kubernetes.io/service-name: ${name}}}\n${body}\n`;

test('names chains by kube-proxy hash: default/nginx port 80 and its endpoint 10.244.0.13:80 (as on an AKS node)', () => {
  assert.equal(serviceChainNames('default/nginx', 'tcp').svc, 'KUBE-SVC-2CMXP7HKUVJN7L6M');
  assert.equal(endpointChainName('default/nginx', 'tcp', '10.244.0.13:80'), 'KUBE-SEP-RPYTXMYI33B6SF5E');
});

for (const [dir, name] of [['overall', 'TestOverallIPTablesRules'], ['repeated', 'TestSyncProxyRulesRepeated (first sync)']]) {
  test(`matches kube-proxy's ${name} byte for byte, as the kernel saves its expected dump`, () => {
    const objs = readObjects(readFileSync(`${FIX}/${dir}/objects.yaml`, 'utf8'), 'objects.yaml');
    assert.deepEqual(objs.issues, []);
    const ours = renderSave(generate(objs, TEST_NODE));
    assert.equal(ours, readFileSync(`${FIX}/${dir}/expected.save`, 'utf8'));
  });
}

test("large cluster mode as in kube-proxy's TestSyncProxyRulesLargeClusterMode: comments go above 1,000 endpoints", () => {
  // 2 × 499 endpoints keep comments; 3 more cross the threshold. Expected lines from that test, in save form.
  const objs = emptyObjects();
  const add = (ns: string, name: string, ip: string, port: number, portName: string, addrs: string[]) =>
    readObjects(`${svc(name, `{clusterIP: ${ip}, ports: [{name: ${portName}, port: ${port}}]}`).replace('namespace: ns', `namespace: ${ns}`)}\n` +
      slice(name, `addressType: IPv4\nendpoints: [${addrs.map((a) => `{addresses: [${a}]}`).join(', ')}]\nports: [{name: ${portName}, port: ${port}}]`).replace('namespace: ns', `namespace: ${ns}`), 'x', objs);
  const block = (b: number) => Array.from({ length: 499 }, (_, i) => `10.${b}.${i % 256}.${Math.floor(i / 256)}`);
  add('ns1', 'svc1', '172.30.0.41', 80, 'p80', block(0));
  add('ns2', 'svc2', '172.30.0.42', 8080, 'p8080', block(1));
  const opts = { ...TEST_NODE, masqueradeAll: true };
  const small = renderSave(generate(objs, opts));
  assert.ok(small.includes('\n-A KUBE-SEP-DKGQUZGBKLTPAR56 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.0.0.0:80\n'));
  add('ns3', 'svc3', '172.30.0.43', 8081, 'p8081', ['203.0.113.4', '203.0.113.8', '203.0.113.12']);
  const large = renderSave(generate(objs, opts));
  assert.ok(large.includes('\n-A KUBE-SEP-RUVVH7YV3PHQBDOS -p tcp -m tcp -j DNAT --to-destination 203.0.113.4:8081\n'));
  assert.ok(large.includes('\n-A KUBE-SEP-DKGQUZGBKLTPAR56 -p tcp -m tcp -j DNAT --to-destination 10.0.0.0:80\n'));
});

test('prints statistic probabilities as iptables-save reads them back (kernel runs: 1/3, 1/7, 1/10, 1/1000)', () => {
  assert.equal(savedProbability('0.5000000000'), '0.50000000000');
  assert.equal(savedProbability('0.3333333333'), '0.33333333349');
  assert.equal(savedProbability('0.1428571429'), '0.14285714272');
  assert.equal(savedProbability('0.1000000000'), '0.10000000009');
  assert.equal(savedProbability('0.0010000000'), '0.00100000016');
});

test('splits three endpoints 1/3, 1/2, rest, sorted by ip:port', () => {
  const out = save(svc('web', '{clusterIP: 10.96.0.10, ports: [{port: 80}]}') + slice('web', 'addressType: IPv4\nendpoints: [{addresses: [10.0.0.3]}, {addresses: [10.0.0.10]}, {addresses: [10.0.0.2]}]\nports: [{port: 8080}]'));
  const svcRules = lines(out, /^-A KUBE-SVC-.* -j KUBE-SEP-/);
  assert.equal(svcRules.length, 3);
  assert.match(svcRules[0], /10\.0\.0\.10:8080" -m statistic --mode random --probability 0\.33333333349/);
  assert.match(svcRules[1], /10\.0\.0\.2:8080" -m statistic --mode random --probability 0\.50000000000/);
  assert.doesNotMatch(svcRules[2], /statistic/);
});

test('reports a bad object by kind, name and field, skips it and still generates the rest', () => {
  const objs = objects(svc('ok', '{clusterIP: 10.96.0.1, ports: [{port: 53, protocol: UDP}]}') + svc('bad', '{clusterIP: 10.96.0.2, ports: [{port: 70000}]}') + svc('bad2', '{clusterIP: 10.96.0.3, externalIPs: [1.2.3], ports: [{port: 1}]}'));
  assert.equal(objs.skipped, 2);
  assert.match(objs.issues[0].message, /Service ns\/bad: spec\.ports\[0\]\.port: .*skipped/);
  assert.match(objs.issues[1].message, /Service ns\/bad2: spec\.externalIPs\[0\]: not an IP address/);
  const out = renderSave(generate(objs, { builtinJumps: false }));
  assert.match(out, /-A KUBE-SERVICES -d 10\.96\.0\.1\/32 -p udp -m comment --comment "ns\/ok has no endpoints" -m udp --dport 53 -j REJECT/);
  assert.doesNotMatch(out, /10\.96\.0\.2/);
});

test('reads kind: List and JSON, and legacy Endpoints when a Service has no EndpointSlice', () => {
  const list = JSON.stringify({ kind: 'List', items: [
    { kind: 'Service', metadata: { name: 'a', namespace: 'ns' }, spec: { clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80 }] } },
    { kind: 'Endpoints', metadata: { name: 'a', namespace: 'ns' }, subsets: [{ addresses: [{ ip: '10.1.0.1' }], notReadyAddresses: [{ ip: '10.1.0.2' }], ports: [{ name: 'http', port: 8080 }] }] },
  ] });
  const out = save(list);
  assert.match(out, /-j DNAT --to-destination 10\.1\.0\.1:8080/);
  assert.doesNotMatch(out, /10\.1\.0\.2/, 'a not-ready address gets no chain');
});

test('falls back to serving terminating endpoints only when none is ready', () => {
  const eps = (a: string, b: string) => `addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: ${a}}, {addresses: [10.0.0.2], conditions: ${b}}]\nports: [{port: 80}]`;
  const one = save(svc('t', '{clusterIP: 10.96.0.7, ports: [{port: 80}]}') + slice('t', eps('{ready: true}', '{ready: false, serving: true, terminating: true}')));
  assert.deepEqual(lines(one, /-j DNAT/).map((l) => l.replace(/.*--to-destination /, '')), ['10.0.0.1:80']);
  const fallback = save(svc('t', '{clusterIP: 10.96.0.7, ports: [{port: 80}]}') + slice('t', eps('{ready: false, serving: false}', '{ready: false, serving: true, terminating: true}')));
  assert.deepEqual(lines(fallback, /-j DNAT/).map((l) => l.replace(/.*--to-destination /, '')), ['10.0.0.2:80']);
});

test('internalTrafficPolicy Local: KUBE-SVL with local endpoints only, DROP when this node has none', () => {
  const spec = '{clusterIP: 10.96.0.8, internalTrafficPolicy: Local, ports: [{port: 80}]}';
  const body = 'addressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: me}, {addresses: [10.0.0.2], nodeName: other}]\nports: [{port: 80}]';
  const here = save(svc('l', spec) + slice('l', body), { hostname: 'me' });
  assert.match(here, /-A KUBE-SERVICES .* -j KUBE-SVL-/);
  assert.deepEqual(lines(here, /-j DNAT/).length, 1);
  const elsewhere = save(svc('l', spec) + slice('l', body), { hostname: 'nobody' });
  assert.match(elsewhere, /-A KUBE-SERVICES -d 10\.96\.0\.8\/32 -p tcp -m comment --comment "ns\/l has no local endpoints" -m tcp --dport 80 -j DROP/);
});

test('IPv6: bracketed DNAT, icmp6 REJECT, NodePorts never on ::1, dual-stack Service in both families', () => {
  const yaml = svc('d', '{type: NodePort, clusterIPs: [10.96.0.9, "fd00::9"], ports: [{port: 80, nodePort: 30080}]}') + svc('e', '{clusterIP: "fd00::a", ports: [{port: 81}]}') +
    slice('d', 'addressType: IPv6\nendpoints: [{addresses: ["fd00:10::1"]}]\nports: [{port: 80}]');
  const v6 = save(yaml, { family: 'ipv6', clusterCidrs: ['10.0.0.0/8', 'fd00:10::/64'] });
  assert.match(v6, /-j DNAT --to-destination \[fd00:10::1\]:80/);
  assert.match(v6, /! -s fd00:10::\/64 -d fd00::9\/128 -p tcp/);
  assert.match(v6, /-j REJECT --reject-with icmp6-port-unreachable/);
  assert.match(v6, /-A KUBE-SERVICES ! -d ::1\/128 -m comment --comment "kubernetes service nodeports;.*" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS/);
  const v4 = save(yaml, { family: 'ipv4' });
  assert.match(v4, /ns\/d has no endpoints/, 'the IPv6 slice gives the IPv4 side nothing');
  assert.doesNotMatch(v4, /fd00/);
});

test('above 1,000 endpoints drops per-endpoint comments, as kube-proxy does for large clusters', () => {
  const objs = emptyObjects();
  for (let i = 0; i < 501; i++) {
    readObjects(svc(`s${i}`, `{clusterIP: 10.96.${i >> 8}.${i & 255}, ports: [{port: 80}]}`) + slice(`s${i}`, `addressType: IPv4\nendpoints: [{addresses: [10.1.${i >> 8}.${i & 255}]}, {addresses: [10.2.${i >> 8}.${i & 255}]}]\nports: [{port: 80}]`), 'x', objs);
  }
  const out = renderSave(generate(objs, { builtinJumps: false }));
  assert.equal(lines(out, /^-A KUBE-SEP-.*comment/).length, 0);
  assert.equal(lines(out, /^-A KUBE-SVC-.*-j KUBE-SEP-.*comment/).length, 0);
  assert.equal(lines(out, /^-A KUBE-SERVICES .*cluster IP/).length, 501);
});

test('a partial sync names only the chains that changed, deletes the endpoint chains that are gone, and leaves out an unchanged table', () => {
  const base = (ep: string) => svc('a', '{clusterIP: 10.96.0.1, ports: [{port: 80}]}') + slice('a', 'addressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\nports: [{port: 80}]') +
    svc('b', '{clusterIP: 10.96.0.2, ports: [{port: 80}]}') + slice('b', `addressType: IPv4\nendpoints: [{addresses: [${ep}]}]\nports: [{port: 80}]`);
  const prev = generate(objects(base('10.0.0.2')));
  const next = generate(objects(base('10.0.0.3')));
  const partial = renderPartialRestore(prev, next);
  const a = serviceChainNames('ns/a', 'tcp').svc;
  const b = serviceChainNames('ns/b', 'tcp').svc;
  assert.doesNotMatch(partial, new RegExp(`^:${a} `, 'm'), 'service a is unchanged');
  assert.match(partial, new RegExp(`^:${b} - `, 'm'));
  assert.match(partial, new RegExp(`^-X ${endpointChainName('ns/b', 'tcp', '10.0.0.2:80')}$`, 'm'), 'the old endpoint chain is deleted');
  assert.doesNotMatch(partial, /^:KUBE-SERVICES - /m, 'KUBE-SERVICES did not change');
  assert.doesNotMatch(partial, /^\*filter$/m, 'nothing changed in filter');
  assert.equal(partial.split('\n').filter((l) => /^[-:]/.test(l)).length, 7, 'the SVC chain (2 lines), the new SEP chain (3), the old one flushed and deleted (2)');
  assert.ok(partial.length < renderRestore(next).length);
});
