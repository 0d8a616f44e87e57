import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Engine } from '../../src/netfilter/engine';
import { ISTIO_SCENARIOS, istioPod, istioRuleset, runScenarios } from '../../src/cli/demo';

test('the Istio pod: inbound to Envoy 15006, excluded ports and Envoy\'s own traffic go straight', () => {
  const [inbound, health, outbound, envoyOut, viaLo, viaPodIp, viaClusterIp] = runScenarios(new Engine(istioPod(), [istioRuleset()]), ISTIO_SCENARIOS).map((r) => r.traces);
  assert.deepEqual([inbound[0].result.socket?.port, inbound[0].result.origDst], [15006, { addr: '10.244.0.13', port: 8080 }]);
  assert.equal(health[0].result.socket?.port, 15021);
  assert.deepEqual([outbound[0].result.socket?.port, outbound[0].result.origDst], [15001, { addr: '10.244.2.9', port: 80 }]);
  assert.deepEqual([envoyOut[0].result.disposition, envoyOut[0].result.iface], ['out', 'eth0']);
  assert.equal(viaLo[0].result.socket?.process, 'app');
  assert.equal(viaPodIp[0].result.socket?.process, 'app');
  assert.deepEqual(viaClusterIp.map((t) => t.result.socket?.port), [15001, 15006, 8080]);
});

test('podtables trace prints a step per rule and the end, and refuses an impossible packet with exit code 2', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  const ok = cli(['trace', '--json', 'tcp', '->', '10.96.0.10:80', 'uid', '1000']);
  assert.equal(ok.status, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.deepEqual([j.result.disposition, j.result.iface, j.result.nextHop], ['out', 'eth0', '10.244.0.1']);
  const bad = cli(['trace', 'tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth9']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^podtables: packet: unknown interface "eth9"/);
  assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace');
  const demo = cli(['demo']);
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /delivered to linkerd-proxy \(inbound\) \(uid 2102\) listening on tcp 0\.0\.0\.0:4143; it reads the original destination 10\.244\.0\.13:8080/);
});
