/**
 * The index of long chains (compile.ts) is a shortcut, never a change of meaning: on random
 * kube-proxy-shaped nat tables (a long KUBE-SERVICES of one-destination-one-port rules, mixed with
 * rules the index cannot key: source tests, port ranges, negated ports, other matches), every
 * packet's whole trace with the index equals the trace of the kernel's rule-by-rule walk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostFromText } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';

const node = hostFromText({
  name: 'node',
  interfaces: [{ name: 'eth0', addresses: ['10.0.0.10/24'] }, { name: 'cni0', addresses: ['10.244.0.1/24'] }],
  routes: [{ dst: 'default', via: '10.0.0.1', dev: 'eth0' }],
  forwarding: { ipv4: true },
});

const IPS = Array.from({ length: 12 }, (_, i) => `10.96.0.${i + 1}`);
const PORTS = [53, 80, 443];
const PROTOS = ['tcp', 'udp'] as const;

const SHAPES = ['keyed', 'source', 'range', 'not-port', 'no-port', 'sport', 'mask', 'iface', 'mark'] as const;

/** A rule of KUBE-SERVICES: the keyed kind, or one the index must always try. */
const serviceRule = (shapes: readonly (typeof SHAPES)[number][]) => fc.record({
  ip: fc.constantFrom(...IPS),
  port: fc.constantFrom(...PORTS),
  proto: fc.constantFrom(...PROTOS),
  svc: fc.nat(5),
  shape: fc.constantFrom(...shapes),
}).map(({ ip, port, proto, svc, shape }) => {
  const p = `-p ${proto} -m ${proto}`;
  const rest = {
    keyed: `-d ${ip}/32 ${p} --dport ${port}`,
    source: `! -s 10.244.0.0/16 -d ${ip}/32 ${p} --dport ${port}`,
    range: `-d ${ip}/32 ${p} --dport ${port}:${port + 10}`,
    'not-port': `-d ${ip}/32 ${p} ! --dport ${port}`,
    'no-port': `-d ${ip}/32 -p ${proto}`,
    sport: `-d ${ip}/32 ${p} --sport 40000 --dport ${port}`,
    mask: `-d ${ip.replace(/\d+$/, '0')}/28 ${p} --dport ${port}`,
    iface: `-d ${ip}/32 -i cni0 ${p} --dport ${port}`,
    mark: `-d ${ip}/32 ${p} --dport ${port} -m mark --mark 0x4000/0x4000`,
  }[shape];
  return `-A KUBE-SERVICES ${rest} -m comment --comment "svc${svc}" -j KUBE-SVC-${svc}`;
});

/**
 * KUBE-SERVICES rules: 20-50 keyed ones with up to four others placed among them, few enough
 * (a quarter at most, with the closing addrtype rule) that the chain is indexed.
 */
const serviceRules = fc
  .tuple(fc.array(serviceRule(['keyed']), { minLength: 20, maxLength: 50 }), fc.array(fc.tuple(serviceRule(SHAPES.slice(1)), fc.nat()), { maxLength: 4 }))
  .map(([keyed, others]) => {
    const out = [...keyed];
    for (const [r, at] of others) out.splice(at % (out.length + 1), 0, r);
    return out;
  });

/** A nat table in kube-proxy's shape with a KUBE-SERVICES of `rules` (long enough to be indexed). */
function natTable(rules: string[]): string {
  const lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]',
    ':KUBE-SERVICES - [0:0]', ':KUBE-MARK-MASQ - [0:0]', ':KUBE-POSTROUTING - [0:0]'];
  for (let s = 0; s <= 5; s++) lines.push(`:KUBE-SVC-${s} - [0:0]`);
  lines.push(
    '-A PREROUTING -j KUBE-SERVICES', '-A OUTPUT -j KUBE-SERVICES', '-A POSTROUTING -j KUBE-POSTROUTING',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
    '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
    '-A KUBE-POSTROUTING -j MASQUERADE --random-fully',
    ...rules,
    '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j RETURN',
  );
  for (let s = 0; s <= 5; s++) {
    lines.push(`-A KUBE-SVC-${s} ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`);
    lines.push(`-A KUBE-SVC-${s} -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.0.${10 + s}:8080`);
    lines.push(`-A KUBE-SVC-${s} -p tcp -j DNAT --to-destination 10.244.0.${20 + s}:8080`);
  }
  return [...lines, 'COMMIT', ''].join('\n');
}

const packet = fc.record({
  ip: fc.constantFrom(...IPS, '10.96.0.99', '10.0.0.10'),
  port: fc.constantFrom(...PORTS, 8080),
  proto: fc.constantFrom('tcp', 'udp', 'icmp'),
  from: fc.constantFrom('pod', 'node', 'outside'),
  mark: fc.constantFrom(0, 0x4000),
}).map(({ ip, port, proto, from, mark }) => {
  const dst = proto === 'icmp' ? ip : `${ip}:${port}`;
  const src = from === 'pod' ? '10.244.0.7' : '192.168.1.9';
  const sport = proto === 'icmp' ? '' : ':40000';
  return from === 'node' ? `${proto} -> ${dst} uid 1000 mark ${mark}` : `${proto} ${src}${sport} -> ${dst} in ${from === 'pod' ? 'cni0' : 'eth0'} mark ${mark}`;
});

test('with the index, every trace through a kube-proxy-shaped table equals the rule-by-rule walk', () => {
  fc.assert(fc.property(serviceRules, fc.array(packet, { minLength: 1, maxLength: 12 }), fc.nat(1000), (rules, packets, seed) => {
    const parsed = parseRestore(natTable(rules), { family: 'ipv4' });
    assert.deepEqual(parsed.issues.filter((i) => i.severity === 'error'), []);
    const indexed = new Engine(node, [parsed.ruleset], { seed, record: true });
    const walked = new Engine(node, [parsed.ruleset], { seed, record: true, index: false });
    for (const p of packets) {
      const spec = parsePacketSpec(p);
      assert.deepStrictEqual(indexed.trace(spec), walked.trace(spec), p);
      // the established packet after it reuses the flow, in both engines alike
      assert.deepStrictEqual(indexed.trace({ ...spec, state: 'established' }), walked.trace({ ...spec, state: 'established' }), `${p} (established)`);
    }
  }), { numRuns: 150 });
});

test('the index finds a service among 5,000 by destination, protocol and port, keeping rule order with the rules it cannot key', () => {
  const rules: string[] = [];
  for (let i = 0; i < 5000; i++) rules.push(`-A KUBE-SERVICES -d 10.96.${i >> 8}.${i & 255}/32 -p ${i % 2 ? 'udp' : 'tcp'} -m ${i % 2 ? 'udp' : 'tcp'} --dport ${80 + (i % 3)} -j KUBE-SVC-${i % 6}`);
  // a catch-all in the middle that the index must try for every packet, in its place
  rules.splice(2500, 0, '-A KUBE-SERVICES -p tcp -m tcp --dport 81 -j KUBE-MARK-MASQ');
  const parsed = parseRestore(natTable(rules), { family: 'ipv4' });
  const indexed = new Engine(node, [parsed.ruleset]);
  const walked = new Engine(node, [parsed.ruleset], { index: false });
  for (const [i, proto] of [[0, 'tcp'], [3001, 'udp'], [4997, 'udp'], [4, 'tcp'], [4, 'udp'], [2506, 'tcp']] as const) {
    const spec = parsePacketSpec(`${proto} -> 10.96.${i >> 8}.${i & 255}:${80 + (i % 3)} uid 0`);
    const t = indexed.trace(spec);
    assert.deepStrictEqual(t, walked.trace(spec));
    const hit = t.steps.find((s) => s.chain === 'KUBE-SERVICES' && s.kind === 'rule');
    const expected = (i % 2 ? 'udp' : 'tcp') === proto ? (i >= 2500 ? i + 2 : i + 1) : null;
    const svc = t.steps.find((s) => s.chain === 'KUBE-SERVICES' && s.target?.startsWith('KUBE-SVC-'));
    assert.equal(svc?.rule ?? null, expected, `${proto} to service ${i}`);
    // tcp to port 81 behind the catch-all passes it first (it marks, then the walk goes on)
    assert.equal(hit?.rule === 2501, i > 2500 && proto === 'tcp' && i % 3 === 1, `${proto} to service ${i}: the catch-all`);
  }
});
