import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiServerPorts, cniArgs, flagsForPod, parseNetConf, skipReason } from '../../src/mesh/linkerd-cni';

const conf = parseNetConf({
  cniVersion: '1.0.0', name: 'k8s', type: 'linkerd-cni',
  linkerd: { 'proxy-uid': 2102, 'inbound-ports-to-ignore': ['4190', '4191'], 'outbound-ports-to-ignore': ['443'], 'subnets-to-ignore': ['10.0.0.0/8'] },
}).conf!;

test('the configuration takes linkerd-cni keys with their defaults, and names a bad key', () => {
  assert.equal(conf.linkerd['incoming-proxy-port'], '4143');
  assert.equal(conf.linkerd['iptables-mode'], 'legacy');
  assert.equal(conf.linkerd.ipv6, false);
  const bad = parseNetConf({ cniVersion: '1.0.0', name: 'k8s', type: 'linkerd-cni', linkerd: { 'outgoing-proxy-port': 'x', 'iptables-mode': 'fast' } });
  assert.equal(bad.conf, undefined);
  assert.ok(bad.errors.some((e) => e.startsWith('linkerd.outgoing-proxy-port:')), bad.errors.join());
  assert.ok(bad.errors.some((e) => e.startsWith('linkerd.iptables-mode:')), bad.errors.join());
});

test('inbound skip ports from an annotation are added; outbound ports and subnets are replaced; uid and gid override', () => {
  const ann: Record<string, string> = {
    'config.linkerd.io/skip-inbound-ports': '9000, 9100-9200',
    'config.linkerd.io/skip-outbound-ports': '25',
    'config.linkerd.io/skip-subnets': '192.168.0.0/16',
    'config.linkerd.io/proxy-uid': '3000',
    'config.linkerd.io/proxy-gid': '3001',
  };
  const f = flagsForPod(conf, (k) => ann[k]);
  assert.deepEqual(f.inboundPortsToIgnore, ['4190', '4191', '9000', '9100-9200']);
  assert.deepEqual(f.outboundPortsToIgnore, ['25']);
  assert.deepEqual(f.subnetsToIgnore, ['192.168.0.0/16']);
  assert.equal(f.proxyUid, '3000');
  assert.equal(f.proxyGid, '3001');
  const none = flagsForPod(conf, () => undefined, ['443', '6443']);
  assert.deepEqual(none.outboundPortsToIgnore, ['443', '443', '6443'], 'control-plane pods skip the API server ports too');
});

test('only pods with the proxy and without linkerd-init are configured', () => {
  assert.equal(skipReason({ spec: { containers: [{ name: 'app' }, { name: 'linkerd-proxy' }] } }), null);
  assert.equal(skipReason({ spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'linkerd-proxy', restartPolicy: 'Always' }] } }), null);
  assert.match(skipReason({ spec: { containers: [{ name: 'app' }], initContainers: [{ name: 'linkerd-proxy' }] } })!, /no linkerd-proxy/);
  assert.match(skipReason({ spec: { containers: [{ name: 'linkerd-proxy' }], initContainers: [{ name: 'linkerd-init' }] } })!, /linkerd-init/);
});

test('CNI_ARGS and the kubernetes Service ports are read as the runtime and the API give them', () => {
  assert.deepEqual(cniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0'), { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'shop', K8S_POD_NAME: 'web-0' });
  assert.deepEqual(apiServerPorts({ spec: { ports: [{ port: 443, targetPort: 6443 }, { port: 8443, targetPort: 'https' }] } }), ['443', '6443', '8443']);
});
