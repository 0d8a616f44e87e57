/**
 * TPROXY through the trace engine, as a network namespace showed it (test/kernel/istio.test.ts
 * 'istio TPROXY with real TCP'): the packet reaches the transparent listener unchanged, a listener
 * that is not transparent gets nothing, and a destination the host does not own needs a policy
 * route that the host model cannot hold, so the trace names it as an assumption.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPodHost } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';

const RULES = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff
COMMIT
`;

/** The embedded pod (10.244.0.13 on eth0): the app on 8080, the proxy on a dual-stack :: 15006. */
function engine(transparent: boolean): Engine {
  const r = parseRestore(RULES, { family: 'ipv4' });
  assert.deepEqual(r.issues.filter((i) => i.severity === 'error'), []);
  const host = defaultPodHost([
    { proto: 'tcp', addr: '0.0.0.0', port: 8080, uid: 1000, process: 'app' },
    { proto: 'tcp', addr: '::', port: 15006, uid: 1337, process: 'envoy', transparent, v6only: false },
  ]);
  return new Engine(host, [r.ruleset]);
}

test('TPROXY hands a packet for a local address to the transparent listener unchanged, assuming nothing', () => {
  const t = engine(true).trace(parsePacketSpec('tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0'));
  assert.equal(t.result.disposition, 'local');
  assert.deepEqual([t.result.socket?.process, t.result.socket?.port, t.result.socket?.uid], ['envoy', 15006, 1337]);
  assert.deepEqual(t.result.packet, { src: '10.0.0.5', sport: 41000, dst: '10.244.0.13', dport: 8080 });
  assert.deepEqual(t.assumptions, []);
});

test('TPROXY delivers a destination the host does not own only on an assumed policy route, and the trace says so', () => {
  const t = engine(true).trace(parsePacketSpec('tcp 10.0.0.5:41000 -> 10.90.0.5:8080 in eth0'));
  assert.equal(t.result.disposition, 'local');
  assert.equal(t.result.socket?.port, 15006);
  assert.equal(t.result.packet.dst, '10.90.0.5');
  assert.equal(t.assumptions.length, 1);
  assert.match(t.assumptions[0], /^TPROXY: 10\.90\.0\.5 is not a local address: .*policy route sends mark 0x539/);
});

test('TPROXY drops the packet when the listener on its port is not transparent, and the app behind the port gets nothing', () => {
  const t = engine(false).trace(parsePacketSpec('tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0'));
  assert.equal(t.result.disposition, 'drop');
  assert.deepEqual(t.result.at, { hook: 'PREROUTING', table: 'mangle', chain: 'PREROUTING', rule: 1 });
  assert.equal(t.result.socket, null);
});
