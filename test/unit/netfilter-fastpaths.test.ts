/**
 * The engine's fast paths answer exactly as the reference functions they stand in for: the
 * compiled rule header (IPv4 on int32) as headerMatches, the routing table on numbers (fib.ts) as
 * model/host's route, isLocal and masqueradeAddress and addrtype's addrTypes, table-built IPv4
 * text as formatIP, and the flow table keeps the two families apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIP, maskOf, type Family } from '../../src/model/addr';
import { formatAddr } from '../../src/model/fast-addr';
import { hostFromText, isLocal, masqueradeAddress, route, type Host } from '../../src/model/host';
import type { Packet } from '../../src/model/packet';
import type { Rule } from '../../src/model/ruleset';
import { addrTypes } from '../../src/netfilter/addrtype';
import { FlowTable } from '../../src/netfilter/conntrack';
import { Fib } from '../../src/netfilter/fib';
import { compiledHeaderMatches, compileHeader, headerMatches } from '../../src/netfilter/header';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** IPv4 addresses that meet each other: a few networks, their edges, loopback, multicast, broadcast. */
const v4 = fc.oneof(
  u32,
  fc.constantFrom(0, 0xffffffff, 0x7f000001, 0x7f000009, 0x7f0000ff, 0xe00000fb, 0x0a000001, 0x0a000002, 0x0a0000ff, 0x0a000000, 0x0af40001, 0x0af400ff, 0xc0a80105, 0xc0a8ffff),
  fc.tuple(fc.constantFrom(0x0a000000, 0x0af40000, 0xc0a80000, 0x7f000000), fc.integer({ min: 0, max: 0xffff })).map(([n, h]) => (n | h) >>> 0),
).map(BigInt);
const v6 = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.constantFrom(0n, 1n, 0xfd00n << 112n, (0xfd00n << 112n) | 1n, 0xffn << 120n));

test('a compiled header passes exactly the packets headerMatches passes', () => {
  const negatable = <T>(a: fc.Arbitrary<T>) => fc.option(fc.record({ value: a, invert: fc.boolean() }), { nil: undefined });
  const cidr = (family: Family) =>
    fc.tuple(family === 'ipv4' ? v4 : v6, fc.oneof(fc.integer({ min: 0, max: family === 'ipv4' ? 32 : 128 }).map((n) => maskOf(n, family)), family === 'ipv4' ? v4 : v6), fc.boolean())
      // the model keeps addresses masked; an unmasked one must still answer as headerMatches does
      .map(([a, mask, masked]) => ({ family, addr: masked ? a & mask : a, mask }));
  const iface = fc.constantFrom('eth0', 'eth+', 'e+', '+', 'cni0', 'lo');
  const rule = (family: Family): fc.Arbitrary<Rule> => fc.record({
    source: negatable(cidr(family)), destination: negatable(cidr(family)), inInterface: negatable(iface), outInterface: negatable(iface),
    protocol: negatable(fc.constantFrom('tcp', 'udp', 'all', 'icmp', '6', '17', 'nosuchproto')),
    fragment: fc.option(fc.record({ invert: fc.boolean() }), { nil: undefined }),
    matches: fc.constant([]),
  });
  const packet = (family: Family) => fc.record({
    src: family === 'ipv4' ? v4 : v6, dst: family === 'ipv4' ? v4 : v6, protocol: fc.constantFrom(1, 6, 17, 58),
    inInterface: fc.option(fc.constantFrom('eth0', 'eth1', 'cni0', 'lo', 'e'), { nil: undefined }),
    outInterface: fc.option(fc.constantFrom('eth0', 'eth1', 'cni0', 'lo'), { nil: undefined }), fragment: fc.boolean(),
  }).map((x) => ({ ...x, family }) as unknown as Packet);
  for (const family of ['ipv4', 'ipv6'] as const) {
    fc.assert(fc.property(rule(family), fc.array(packet(family), { minLength: 1, maxLength: 8 }), (r, ps) => {
      const h = compileHeader(r, family);
      for (const p of ps) assert.equal(compiledHeaderMatches(h, p, Number(p.src) | 0, Number(p.dst) | 0), headerMatches(r, p));
    }), { numRuns: 3000 });
  }
});

/** Random hosts: interfaces up or down (lo sometimes absent or down), addresses of any prefix, routes with and without gateway and source. */
const host: fc.Arbitrary<Host> = fc.record({
  lo: fc.constantFrom('up', 'down', 'none', 'odd'),
  ifaces: fc.array(fc.record({
    up: fc.boolean(),
    addrs: fc.array(fc.tuple(fc.constantFrom('10.0.0.1', '10.0.0.2', '10.244.0.1', '192.168.1.5', '127.0.0.9', '10.0.0.255', 'fd00::1', 'fd00::2'), fc.integer({ min: 0, max: 32 })), { maxLength: 3 }),
  }), { minLength: 1, maxLength: 3 }),
  routes: fc.array(fc.record({
    dst: fc.constantFrom('default', '10.0.0.0/8', '10.244.0.0/16', '10.244.0.0/24', '192.168.0.0/16', '0.0.0.0/1', '10.0.0.7/32', '::/0'),
    via: fc.option(fc.constantFrom('10.0.0.254', '192.168.1.1', 'fd00::fe'), { nil: undefined }),
    src: fc.option(fc.constantFrom('10.0.0.1', '10.244.0.1'), { nil: undefined }),
    dev: fc.nat(2),
  }), { maxLength: 4 }),
}).map(({ lo, ifaces, routes }) => {
  const interfaces = ifaces.map((i, k) => ({
    name: `eth${k}`, up: i.up,
    addresses: i.addrs.map(([a, p]) => `${a}/${a.includes(':') ? p * 4 : p}`),
  }));
  if (lo !== 'none') interfaces.unshift({ name: 'lo', up: lo !== 'down', addresses: lo === 'odd' ? ['10.9.9.9/32'] : ['127.0.0.1/8', '::1/128'] });
  const rs = routes
    .map((r) => ({ ...r, dev: interfaces.filter((i) => i.name !== 'lo')[r.dev % ifaces.length].name }))
    // a default route's family comes from its gateway; keep each route's addresses in one family
    .filter((r) => (r.dst.includes(':') ? !r.via?.includes('.') && !r.src : !r.via?.includes(':')))
    .map((r) => (r.dst === '::/0' ? { dst: 'default', via: r.via ?? 'fd00::fe', dev: r.dev } : r));
  return hostFromText({ interfaces, routes: rs, forwarding: { ipv4: true, ipv6: true } });
});

test('the numeric routing table answers as model route, isLocal, masqueradeAddress and addrTypes', () => {
  const iface = fc.option(fc.constantFrom('lo', 'eth0', 'eth1', 'eth2', 'nope'), { nil: undefined });
  fc.assert(fc.property(host, fc.array(fc.tuple(fc.boolean(), v4, v6, iface), { minLength: 1, maxLength: 10 }), (h, queries) => {
    const fib = new Fib(h);
    for (const [useV6, a4, a6, dev] of queries) {
      const family: Family = useV6 ? 'ipv6' : 'ipv4';
      const value = useV6 ? a6 : a4;
      const ip = { family, value };
      assert.deepStrictEqual(fib.route(family, value), route(h, ip), `route ${formatIP(value, family)}`);
      assert.equal(fib.isLocal(family, value), isLocal(h, ip));
      assert.deepStrictEqual(fib.masquerade(dev ?? 'eth0', ip), masqueradeAddress(h, dev ?? 'eth0', ip));
      assert.deepStrictEqual([...fib.addrType(family, value, dev)], [...addrTypes(h, family, value, dev)], `addrtype ${formatIP(value, family)} ${dev}`);
    }
  }), { numRuns: 1500 });
});

test('IPv4 text made from the octet table is the text formatIP prints', () => {
  fc.assert(fc.property(u32, (n) => assert.equal(formatAddr(BigInt(n), 'ipv4'), formatIP(BigInt(n), 'ipv4'))), { numRuns: 5000 });
  fc.assert(fc.property(v6, (n) => assert.equal(formatAddr(n, 'ipv6'), formatIP(n, 'ipv6'))), { numRuns: 500 });
});

test('flows of an IPv4 packet and an IPv6 one with the same numbers are two flows', () => {
  const flows = new FlowTable();
  const p = (family: Family) => ({ family, protocol: 6, src: 0x0a000001n, dst: 0x0a000002n, sport: 1234, dport: 80 }) as Packet;
  const f4 = flows.create(p('ipv4'));
  assert.equal(flows.lookup(p('ipv6')), undefined);
  const f6 = flows.create(p('ipv6'));
  assert.equal(flows.lookup(p('ipv4'))?.flow, f4);
  assert.equal(flows.lookup(p('ipv6'))?.flow, f6);
  flows.confirm(f4);
  const reply = { ...p('ipv4'), src: 0x0a000002n, dst: 0x0a000001n, sport: 80, dport: 1234 };
  assert.deepEqual(flows.lookup(reply), { flow: f4, reply: true });
  assert.equal(flows.lookup({ ...reply, family: 'ipv6' }), undefined);
});
