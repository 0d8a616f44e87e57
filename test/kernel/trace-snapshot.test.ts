/**
 * `podtables snapshot` of a real namespace: addresses, routes, listening sockets with their uid,
 * forwarding, the rules of both backends (with a warning when both hold rules), and a trace through
 * the snapshot that lands on the socket the namespace really has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { needKernel, restore, withNetns } from '../support/kernel';
import { inNetnsOk } from '../../src/kernel/netns';
import { snapshot, parseSs } from '../../src/kernel/snapshot';
import { hostFromText } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';
import { LINKERD_RULES } from '../../src/cli/demo';

test('ss lines become sockets with uid, process and the dual-stack flag', () => {
  const s = parseSs([
    'udp UNCONN 0 0 *:53 *:* users:(("dnsd",pid=7,fd=4)) ino:1 sk:1 v6only:0 <->',
    'tcp LISTEN 0 128 127.0.0.1:8080 0.0.0.0:* users:(("app",pid=9,fd=3)) uid:1000 ino:2 sk:2 <->',
    'tcp LISTEN 0 128 [::]:443 [::]:* ino:3 sk:3 v6only:1 <->',
  ].join('\n'));
  assert.deepEqual(s, [
    { proto: 'udp', addr: '::', port: 53, uid: 0, process: 'dnsd' },
    { proto: 'tcp', addr: '127.0.0.1', port: 8080, uid: 1000, process: 'app' },
    { proto: 'tcp', addr: '::', port: 443, uid: 0, v6only: true },
  ]);
});

test('a snapshot of a namespace holds its addresses, routes, sockets, forwarding and rules, and traces like it', { timeout: 60_000 }, async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    // a veth pair inside the namespace stands in for the pod's eth0 (no dummy driver on every kernel)
    await inNetnsOk(ns, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    await inNetnsOk(ns, 'ip', ['link', 'set', 'eth0p', 'up']);
    await inNetnsOk(ns, 'ip', ['addr', 'add', '10.244.0.13/24', 'dev', 'eth0']);
    await inNetnsOk(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    await inNetnsOk(ns, 'ip', ['route', 'add', 'default', 'via', '10.244.0.1']);
    await inNetnsOk(ns, 'sysctl', ['-w', 'net.ipv4.ip_forward=1']);
    assert.equal((await restore(ns, `*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n${LINKERD_RULES}`, 'nft')).code, 0);
    assert.equal((await restore(ns, '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n', 'legacy')).code, 0);
    const listener = spawn('ip', ['netns', 'exec', ns, 'setpriv', '--reuid=2102', '--regid=2102', '--clear-groups', process.execPath, '-e',
      "require('net').createServer(()=>{}).listen(4143,'0.0.0.0',()=>console.log('ready'));setTimeout(()=>process.exit(0),20000)"], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve) => listener.stdout!.once('data', () => resolve()));
      const snap = await snapshot(ns);
      // the kernel also gives eth0 an IPv6 link-local address; the snapshot keeps it
      assert.deepEqual(snap.host.interfaces?.find((i) => i.name === 'eth0')?.addresses?.filter((a) => !a.startsWith('fe80:')), ['10.244.0.13/24']);
      assert.deepEqual(snap.host.routes, [{ dst: 'default', dev: 'eth0', via: '10.244.0.1' }]);
      assert.deepEqual(snap.host.forwarding, { ipv4: true, ipv6: false });
      assert.deepEqual(snap.host.sockets?.find((s) => s.port === 4143), { proto: 'tcp', addr: '0.0.0.0', port: 4143, uid: 2102, gid: 2102, process: 'node' });
      assert.equal(snap.backend.ipv4, 'nft');
      assert.match(snap.rules.ipv4 ?? '', /-A PROXY_INIT_REDIRECT -p tcp .*-j REDIRECT --to-ports 4143/);
      assert.equal(snap.warnings.length, 1);
      assert.match(snap.warnings[0], /both iptables-legacy and iptables-nft hold rules/);
      const engine = new Engine(hostFromText(snap.host), [parseRestore(snap.rules.ipv4!, { family: 'ipv4' }).ruleset]);
      const tr = engine.trace(parsePacketSpec('tcp 10.244.1.7:41000 -> 10.244.0.13:8080 in eth0'));
      assert.deepEqual([tr.result.disposition, tr.result.socket?.port, tr.result.socket?.uid], ['local', 4143, 2102]);
    } finally {
      listener.kill('SIGTERM');
    }
  }, 'pts');
});
