import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPodHost, hostFromText, type Host } from '../../src/model/host';
import { Engine, conntrackNeeded } from '../../src/netfilter/engine';
import { tablesAt } from '../../src/netfilter/hooks';
import { parsePacketSpec, SpecError } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';
import { LINKERD_RULES, LINKERD_SCENARIOS, linkerdPod, linkerdRuleset, runScenarios } from '../../src/cli/demo';

function engine(rules: string, host: Host = defaultPodHost(), opts = {}): Engine {
  const r = parseRestore(rules, { family: 'ipv4' });
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  return new Engine(host, [r.ruleset], opts);
}
const trace = (e: Engine, p: string) => e.trace(parsePacketSpec(p));
const brief = (e: Engine, p: string) => trace(e, p).steps.map((s) => `${s.table}:${s.chain}:${s.kind}:${s.rule ?? '-'}:${s.verdict}`);

test('each hook runs its tables in priority order (INPUT: nat after filter and security)', () => {
  assert.deepEqual(tablesAt('PREROUTING'), ['raw', 'mangle', 'nat']);
  assert.deepEqual(tablesAt('INPUT'), ['mangle', 'filter', 'security', 'nat']);
  assert.deepEqual(tablesAt('FORWARD'), ['mangle', 'filter', 'security']);
  assert.deepEqual(tablesAt('OUTPUT'), ['raw', 'mangle', 'nat', 'filter', 'security']);
  assert.deepEqual(tablesAt('POSTROUTING'), ['mangle', 'nat']);
});

const WALK = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
:C - [0:0]
-A INPUT -p tcp -j A
-A INPUT -p tcp -m tcp --dport 81 -j RETURN
-A INPUT -p tcp -j DROP
-A A -p tcp -m tcp --dport 80 -g B
-A A -p tcp
-A B -j C
-A B -p tcp -m tcp --dport 80 -j RETURN
-A C -p udp -j DROP
COMMIT
`;

test('goto returns to the chain of the last jump; a user chain ends with an implicit return', () => {
  const e = engine(WALK);
  assert.deepEqual(brief(e, 'tcp 10.0.0.5:1000 -> 10.244.0.13:80 in eth0'), [
    'filter:INPUT:rule:1:JUMP', 'filter:A:rule:1:GOTO', 'filter:B:rule:1:JUMP', 'filter:C:return:-:RETURN',
    'filter:B:rule:2:RETURN', 'filter:INPUT:rule:3:DROP',
  ]);
});

test('a rule without a target continues; RETURN in a built-in chain applies the policy', () => {
  const e = engine(WALK);
  const steps = brief(e, 'tcp 10.0.0.5:1000 -> 10.244.0.13:81 in eth0');
  assert.deepEqual(steps, ['filter:INPUT:rule:1:JUMP', 'filter:A:rule:2:CONTINUE', 'filter:A:return:-:RETURN', 'filter:INPUT:rule:2:RETURN', 'filter:INPUT:policy:-:ACCEPT']);
  assert.equal(trace(e, 'tcp 10.0.0.5:1000 -> 10.244.0.13:81 in eth0').result.disposition, 'no-listener');
});

test('a drop names the table, chain and rule', () => {
  const t = trace(engine(WALK), 'tcp 10.0.0.5:1000 -> 10.244.0.13:82 in eth0');
  assert.equal(t.result.disposition, 'drop');
  assert.deepEqual(t.result.at, { hook: 'INPUT', table: 'filter', chain: 'INPUT', rule: 3 });
});

test('the Linkerd pod: inbound goes to the proxy with the original destination, skipped ports go straight', () => {
  const e = new Engine(linkerdPod(), [linkerdRuleset()]);
  const [inbound, skipped, outbound, proxyOut, viaLo, viaPodIp, viaClusterIp] = runScenarios(e, LINKERD_SCENARIOS).map((r) => r.traces);
  assert.equal(inbound[0].result.socket?.port, 4143);
  assert.deepEqual(inbound[0].result.origDst, { addr: '10.244.0.13', port: 8080 });
  assert.equal(skipped[0].result.socket?.port, 4191);
  assert.equal(outbound[0].result.socket?.port, 4140);
  assert.deepEqual(outbound[0].result.origDst, { addr: '10.244.2.9', port: 80 });
  assert.equal(proxyOut[0].result.disposition, 'out');
  assert.equal(proxyOut[0].result.iface, 'eth0');
  assert.equal(viaLo[0].result.socket?.port, 8080);
  assert.equal(viaPodIp[0].result.socket?.port, 8080);
  assert.equal(viaClusterIp[0].result.socket?.port, 4140);
  assert.equal(viaClusterIp[1].result.socket?.process, 'app');
});

test('a looped-back packet skips nat PREROUTING and INPUT: conntrack already knows the flow', () => {
  const e = new Engine(linkerdPod(), [linkerdRuleset()]);
  const t = trace(e, 'tcp -> 10.244.2.9:80 uid 1000');
  const natAfterLoop = t.steps.filter((s) => s.table === 'nat' && (s.hook === 'PREROUTING' || s.hook === 'INPUT'));
  assert.deepEqual(natAfterLoop, []);
  assert.ok(t.path.some((p) => p.startsWith('loopback')));
});

test('REDIRECT sends an arriving packet to the primary address of its interface', () => {
  const host = hostFromText({ interfaces: [{ name: 'eth0', addresses: ['10.1.0.7/24', '10.1.0.8/24'] }], sockets: [{ proto: 'tcp', port: 15001, uid: 1337 }] });
  const e = engine(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n`, host);
  const t = trace(e, 'tcp 10.1.0.50:1234 -> 10.1.0.8:80 in eth0');
  assert.deepEqual(t.result.packet, { src: '10.1.0.50', sport: 1234, dst: '10.1.0.7', dport: 15001 });
  assert.deepEqual(t.result.origDst, { addr: '10.1.0.8', port: 80 });
  assert.equal(t.steps[0].packet?.dst, '10.1.0.7', 'the step shows the rewritten packet');
});

test('an established packet reuses the first packet\'s NAT without walking nat again', () => {
  const e = new Engine(linkerdPod(), [linkerdRuleset()]);
  const t = trace(e, 'tcp 10.244.1.7:41000 -> 10.244.0.13:8080 in eth0 state established');
  assert.deepEqual(t.steps.filter((s) => s.table === 'nat'), []);
  assert.equal(t.result.socket?.port, 4143);
  assert.ok(t.path.some((p) => p.includes('conntrack reuses')));
});

test('without a rule that needs conntrack, the nat table is never consulted (as the kernel does)', () => {
  const rules = `*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n`;
  assert.equal(conntrackNeeded(parseRestore(rules).ruleset), false);
  assert.deepEqual(brief(engine(rules), 'tcp 10.0.0.5:1000 -> 10.244.0.13:80 in eth0'), []);
  assert.deepEqual(brief(engine(rules, defaultPodHost(), { conntrack: true }), 'tcp 10.0.0.5:1000 -> 10.244.0.13:80 in eth0'), ['nat:PREROUTING:rule:1:ACCEPT', 'nat:INPUT:policy:-:ACCEPT']);
  assert.equal(conntrackNeeded(parseRestore(LINKERD_RULES).ruleset), true);
});

test('a packet for another host is dropped with forwarding off and forwarded with it on', () => {
  const rules = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p udp -j ACCEPT\nCOMMIT\n`;
  const off = trace(engine(rules), 'udp 10.244.0.20:5000 -> 10.0.0.9:53 in eth0');
  assert.equal(off.result.disposition, 'drop');
  assert.deepEqual(off.steps, []);
  const host = defaultPodHost();
  host.forwarding.ipv4 = true;
  const on = trace(engine(rules, host), 'udp 10.244.0.20:5000 -> 10.0.0.9:53 in eth0');
  assert.deepEqual([on.result.disposition, on.result.iface, on.result.nextHop], ['forward', 'eth0', '10.244.0.1']);
  assert.equal(on.steps[0].verdict, 'ACCEPT');
});

test('an undecided match follows --assume and the trace says so', () => {
  const rules = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --tcp-option 2 -j DROP\nCOMMIT\n`;
  const yes = trace(engine(rules, defaultPodHost(), { assume: 'match' }), 'tcp 10.0.0.5:1000 -> 10.244.0.13:80 in eth0');
  assert.equal(yes.result.disposition, 'drop');
  assert.match(yes.assumptions[0], /TCP option 2.*assumed to match/);
  const no = trace(engine(rules, defaultPodHost(), { assume: 'nomatch' }), 'tcp 10.0.0.5:1000 -> 10.244.0.13:80 in eth0');
  assert.equal(no.result.disposition, 'no-listener');
  assert.match(no.assumptions[0], /assumed not to match/);
});

test('a long chain of proto/dst/dport rules is looked up by index with the same answer as a walk', () => {
  const lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':SVC - [0:0]', '-A OUTPUT -j SVC'];
  for (let i = 0; i < 200; i++) {
    lines.push(`-A SVC -d 10.96.${i >> 8}.${i & 255}/32 -p tcp -m comment --comment "svc ${i}" -m tcp --dport ${80 + (i % 3)} -j ${i % 2 ? 'DROP' : 'ACCEPT'}`);
    if (i === 100) lines.push('-A SVC -p tcp -m tcp --dport 81 -j REJECT');
  }
  lines.push('COMMIT');
  const e = engine(lines.join('\n') + '\n');
  for (const [dst, port, rule, verdict] of [['10.96.0.3', 80, 4, 'DROP'], ['10.96.0.150', 80, 152, 'ACCEPT'], ['10.96.0.150', 81, 102, 'REJECT'], ['10.96.0.4', 81, 5, 'ACCEPT'], ['10.96.0.4', 82, null, 'RETURN']] as const) {
    const s = trace(e, `tcp -> ${dst}:${port}`).steps.filter((x) => x.chain === 'SVC');
    const last = s[s.length - 1];
    assert.deepEqual([last.rule, last.verdict], [rule, verdict], `${dst}:${port}`);
  }
});

test('statistic branches: --all-branches lists every endpoint with its probability', () => {
  const e = engine(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
-A OUTPUT -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j SVC
-A SVC -p tcp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.1.1:8080
-A SVC -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.1.2:8080
-A SVC -p tcp -j DNAT --to-destination 10.244.1.3:8080
COMMIT
`);
  const all = e.traceAll(parsePacketSpec('tcp -> 10.96.0.10:80 uid 1000'));
  assert.deepEqual(all.map((x) => x.result.packet.dst).sort(), ['10.244.1.1', '10.244.1.2', '10.244.1.3']);
  for (const x of all) assert.ok(Math.abs(x.probability - 1 / 3) < 1e-6);
});

test('packets the grammar or the host cannot have are refused with a clear message', () => {
  assert.throws(() => parsePacketSpec('tcp -> 10.0.0.1'), (e: Error) => e instanceof SpecError && /needs a port/.test(e.message));
  assert.throws(() => parsePacketSpec('gre 1.2.3.4 -> 10.0.0.1 in eth0 uid 5'), /no local uid/);
  assert.throws(() => parsePacketSpec('tcp 1.2.3.4:5 -> 10.0.0.1:80 wat 1'), /unknown word "wat"/);
  assert.throws(() => parsePacketSpec('icmp 1.2.3.4:5 -> 10.0.0.1'), /has no ports/);
  const e = new Engine(defaultPodHost(), []);
  assert.throws(() => trace(e, 'tcp 1.2.3.4:5 -> 10.244.0.13:80 in eth7'), /unknown interface "eth7"/);
  assert.throws(() => trace(e, 'tcp 1.2.3.4:5 -> 10.0.0.1:80 uid 0'), /not an address of this host/);
  const p = parsePacketSpec('tcp [fd00::1]:5 -> [fd00::2]:80 in eth0 flags SYN,ACK mark 0x10 state established');
  assert.deepEqual([p.family, p.sport, p.dport, p.tcpFlags, p.mark, p.state], ['ipv6', 5, 80, 0x12, 0x10, 'established']);
});

test('after nat OUTPUT re-routes a packet to lo, the rest of OUTPUT still sees the old out interface', () => {
  // kernel trace: -o veth0 matched in filter OUTPUT after a DNAT to a local address (nf_hook_state.out is fixed per hook)
  const e = engine(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p tcp -j DNAT --to-destination 10.244.0.13:53
-A POSTROUTING -o lo -j ACCEPT
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -o eth0 -j ACCEPT
COMMIT
`);
  const t = trace(e, 'tcp -> 10.244.2.9:80 uid 1000');
  assert.deepEqual(t.steps.filter((s) => s.hook !== 'PREROUTING' && s.hook !== 'INPUT').map((s) => `${s.table}:${s.chain}:${s.rule ?? s.kind}`), ['nat:OUTPUT:1', 'filter:OUTPUT:1', 'nat:POSTROUTING:1']);
  assert.equal(t.result.iface, 'lo', 'then it loops back in on lo');
  assert.equal(t.result.disposition, 'no-listener');
});

test('a packet DNATed to 127.0.0.1 on its way in is dropped as a martian after PREROUTING', () => {
  const e = engine(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j DNAT --to-destination 127.0.0.1:80\nCOMMIT\n`);
  const t = trace(e, 'tcp 10.0.0.5:1000 -> 10.244.0.13:8080 in eth0');
  assert.equal(t.result.disposition, 'drop');
  assert.match(t.result.reason, /martian/);
  assert.deepEqual(t.steps.map((s) => s.hook), ['PREROUTING']);
});

test('a DNAT in OUTPUT to an address without a route drops the packet right after nat OUTPUT', () => {
  // kernel trace (moby golden, DNAT to 192.168.0.2 in a namespace without that route): nothing after nat OUTPUT
  const host = hostFromText({ interfaces: [{ name: 'eth0', addresses: ['10.1.0.7/24'] }] });
  const e = engine(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -p tcp -j DNAT --to-destination 192.168.0.2:80\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n`, host);
  const t = trace(e, 'tcp -> 10.1.0.9:8080 uid 0');
  assert.deepEqual(t.steps.map((s) => `${s.table}:${s.chain}`), ['nat:OUTPUT']);
  assert.equal(t.result.disposition, 'drop');
  assert.match(t.result.reason, /no route after nat OUTPUT/);
});

test('IPv6: REDIRECT of a local packet goes to ::1, and the v6 ruleset is used for v6 packets only', () => {
  const v6 = parseRestore(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n`, { family: 'ipv6' });
  assert.deepEqual(v6.issues.filter((i) => i.severity === 'error'), []);
  const host = hostFromText({ interfaces: [{ name: 'eth0', addresses: ['10.0.0.2/24', 'fd00::2/64'] }], routes: [{ dst: '::/0', via: 'fd00::1', dev: 'eth0' }], sockets: [{ proto: 'tcp', addr: '::', port: 15001, uid: 1337 }] });
  const e = new Engine(host, [v6.ruleset]);
  const t = trace(e, 'tcp -> [2001:db8::5]:443 uid 1000');
  assert.deepEqual([t.result.disposition, t.result.packet.dst, t.result.packet.dport, t.result.origDst], ['local', '::1', 15001, { addr: '2001:db8::5', port: 443 }]);
  assert.equal(trace(e, 'tcp -> 10.0.0.9:443 uid 1000').result.disposition, 'out', 'no v4 ruleset: nothing happens to v4');
});

test('MASQUERADE out lo takes a universe-scope address of another interface, not 127.0.0.1', () => {
  const e = engine(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n`);
  const t = trace(e, 'tcp -> 127.0.0.1:8080 uid 0');
  assert.equal(t.result.packet.src, '10.244.0.13');
  const out = trace(e, 'tcp -> 10.1.2.3:80 uid 0');
  assert.equal(out.result.packet.src, '10.244.0.13');
});

test('a packet from 127.0.0.1 DNATed away from the host is dropped at the re-route', () => {
  // kernel trace: nothing after nat OUTPUT (a loopback source may only leave by lo)
  const e = engine(`*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A OUTPUT -p tcp -j DNAT --to-destination 10.244.0.50:53\nCOMMIT\n`);
  const t = trace(e, 'tcp 127.0.0.1:30000 -> 127.0.0.1:4143 uid 1001');
  assert.deepEqual(t.steps.map((s) => `${s.table}:${s.chain}`), ['nat:OUTPUT']);
  assert.equal(t.result.disposition, 'drop');
});
