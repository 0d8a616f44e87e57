/**
 * Random Kubernetes objects and node options for property tests of the kube-proxy generator:
 * every Service type and traffic policy, affinity, external and load-balancer IPs (IPv6 among
 * them, some written non-canonically), a name that is not ASCII, source ranges with host bits, whitespace, the any-address
 * and junk, EndpointSlices with every condition, local and remote endpoints, legacy Endpoints.
 */
import fc from 'fast-check';
import type { NodeOptions } from '../../src/mesh/kube-proxy/index';

const V4 = ['10.96.0.1', '10.96.0.2', '172.30.0.41', '192.168.3.3', '203.0.113.9', '0.0.0.0'];
const V6 = ['fd00::1', 'FD00:0:0::2', '2001:db8::9', 'fd00:96:0:0:0:0:0:5', '::ffff:1.2.3.4'];
const EP4 = ['10.244.0.1', '10.244.0.2', '10.244.1.3', '10.180.0.4', '192.168.3.3'];
const EP6 = ['fd00:244::1', 'fd00:244::2', 'FD00:244:0::3', 'fe80::1:2'];
const RANGES = ['192.168.0.0/16', '192.168.1.5/16', ' 10.0.0.0/8 ', '0.0.0.0/0', '203.0.113.0/25', '2001:db8::/32', '::/0', 'bogus', '1.2.3.4/33'];

const ip = fc.oneof(fc.constantFrom(...V4), fc.constantFrom(...V6));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const cond = fc.constantFrom(true, false, null, undefined);

const service = fc.record({
  name: fc.constantFrom('web', 'db', 'svc-1', 'x_y', 'wéb'),
  namespace: fc.constantFrom('ns', 'kube-system'),
  type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', undefined),
  clusterIPs: fc.oneof(fc.array(ip, { minLength: 1, maxLength: 2 }), fc.constant(['None'])),
  ports: fc.uniqueArray(fc.record({ name: fc.constantFrom('', 'http', 'dns'), protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.integer({ min: 1, max: 65535 }), nodePort: maybe(fc.integer({ min: 30000, max: 32767 })) }), { minLength: 1, maxLength: 3, selector: (p) => p.name }),
  externalIPs: fc.array(ip, { maxLength: 2 }),
  externalTrafficPolicy: fc.constantFrom('Cluster', 'Local'),
  internalTrafficPolicy: fc.constantFrom('Cluster', 'Local'),
  healthCheckNodePort: maybe(fc.integer({ min: 30000, max: 32767 })),
  loadBalancerSourceRanges: fc.array(fc.constantFrom(...RANGES), { maxLength: 3 }),
  affinity: fc.constantFrom(undefined, 0, 60),
  ingress: fc.array(fc.record({ ip, ipMode: fc.constantFrom(undefined, 'VIP', 'Proxy') }), { maxLength: 2 }),
});

const slice = fc.record({
  service: fc.constantFrom('web', 'db', 'svc-1', 'x_y', 'wéb'),
  namespace: fc.constantFrom('ns', 'kube-system'),
  v6: fc.boolean(),
  endpoints: fc.array(fc.record({ a: fc.nat(3), ready: cond, serving: cond, terminating: cond, nodeName: fc.constantFrom('node-1', 'node-2', undefined) }), { maxLength: 4 }),
  ports: fc.array(fc.record({ name: fc.constantFrom('', 'http', 'dns'), protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'), port: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 2 }),
});

const endpoints = fc.record({
  name: fc.constantFrom('web', 'db', 'svc-1', 'x_y'),
  addresses: fc.array(fc.record({ a: fc.nat(4), nodeName: fc.constantFrom('node-1', undefined) }), { maxLength: 2 }),
  notReady: fc.array(fc.record({ a: fc.nat(4) }), { maxLength: 1 }),
  port: fc.integer({ min: 1, max: 65535 }),
  portName: fc.constantFrom('', 'http'),
});

type Svc = typeof service extends fc.Arbitrary<infer T> ? T : never;
type Slice = typeof slice extends fc.Arbitrary<infer T> ? T : never;
type Eps = typeof endpoints extends fc.Arbitrary<infer T> ? T : never;

function serviceObject(s: Svc) {
  return {
    kind: 'Service',
    metadata: { namespace: s.namespace, name: s.name },
    spec: {
      type: s.type,
      clusterIPs: s.clusterIPs,
      ports: s.ports.map((p) => ({ ...p, nodePort: p.nodePort ?? undefined })),
      externalIPs: s.externalIPs,
      externalTrafficPolicy: s.externalTrafficPolicy,
      internalTrafficPolicy: s.internalTrafficPolicy,
      healthCheckNodePort: s.healthCheckNodePort,
      loadBalancerSourceRanges: s.loadBalancerSourceRanges,
      sessionAffinity: s.affinity === undefined ? 'None' : 'ClientIP',
      sessionAffinityConfig: s.affinity ? { clientIP: { timeoutSeconds: s.affinity } } : undefined,
    },
    status: { loadBalancer: { ingress: s.ingress.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) } },
  };
}

function sliceObject(s: Slice, i: number) {
  const pool = s.v6 ? EP6 : EP4;
  return {
    kind: 'EndpointSlice',
    metadata: { namespace: s.namespace, name: `${s.service}-${i}`, labels: { 'kubernetes.io/service-name': s.service } },
    addressType: s.v6 ? 'IPv6' : 'IPv4',
    endpoints: s.endpoints.map((e) => ({ addresses: [pool[e.a % pool.length]], conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating }, nodeName: e.nodeName })),
    ports: s.ports,
  };
}

function endpointsObject(e: Eps) {
  return {
    kind: 'Endpoints',
    metadata: { namespace: 'ns', name: e.name },
    subsets: [{ addresses: e.addresses.map((a) => ({ ip: EP4[a.a], nodeName: a.nodeName })), notReadyAddresses: e.notReady.map((a) => ({ ip: EP4[a.a] })), ports: [{ name: e.portName, port: e.port }] }],
  };
}

/** Slices for the given Services' ports (most of them), so that endpoints meet their Services. */
const slicesFor = (services: Svc[]) =>
  fc.array(
    fc.tuple(fc.nat(Math.max(services.length - 1, 0)), slice, fc.boolean()).map(([i, sl, own]) => {
      const s = services[i];
      if (!s || !own) return sl;
      return { ...sl, service: s.name, namespace: s.namespace, ports: s.ports.map((p, k) => ({ name: p.name, protocol: p.protocol, port: sl.ports[k]?.port ?? 8080 + k })) };
    }),
    { maxLength: 6 },
  );

/** A `kind: List` JSON text of random Services, EndpointSlices and Endpoints (JSON drops the undefined fields). */
export const objectsText = fc
  .array(service, { maxLength: 5 })
  .chain((services) => fc.record({ services: fc.constant(services), slices: slicesFor(services), endpoints: fc.array(endpoints, { maxLength: 2 }) }))
  .map(({ services, slices, endpoints: eps }) => JSON.stringify({ kind: 'List', items: [...services.map(serviceObject), ...slices.map(sliceObject), ...eps.map(endpointsObject)] }));

/** Random node options of either family. */
export const nodeOptionsArb: fc.Arbitrary<Partial<NodeOptions>> = fc.record({
  family: fc.constantFrom('ipv4' as const, 'ipv6' as const),
  hostname: fc.constantFrom('', 'node-1'),
  nodeIPs: fc.subarray(['192.168.3.3', '2001:db8::3', '10.0.0.9']),
  clusterCidrs: fc.subarray(['10.244.0.0/16', 'fd00:244::/48', '10.0.0.1/8', '0.0.0.0/0']),
  masqueradeBit: fc.integer({ min: 0, max: 31 }),
  masqueradeAll: fc.boolean(),
  localhostNodePorts: fc.boolean(),
  builtinJumps: fc.boolean(),
  randomFully: fc.boolean(),
  canary: fc.boolean(),
});
