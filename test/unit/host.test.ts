import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIP } from '../../src/model/addr';
import { defaultPodHost, findSocket, HostError, hostToText, hostFromText, isLocal, parseHost, route } from '../../src/model/host';

const ip = (s: string) => parseIP(s)!;

test('a host loads from YAML, with lo added when it is not listed', () => {
  const h = parseHost(`
interfaces:
  - name: eth0
    addresses: [192.168.1.5/24, fd00::5/64]
routes:
  - { dst: default, via: 192.168.1.1, dev: eth0 }
sockets:
  - { proto: tcp, addr: 0.0.0.0, port: 80, uid: 33, process: nginx }
forwarding: { ipv4: true }
`);
  assert.deepEqual(h.interfaces.map((i) => i.name), ['lo', 'eth0']);
  assert.equal(h.forwarding.ipv4, true);
  assert.equal(h.forwarding.ipv6, false);
  assert.equal(h.sockets[0].gid, 33, 'gid defaults to the uid');
});

test('host errors name the field that is wrong', () => {
  assert.throws(() => parseHost('interfaces: [{name: eth0, addresses: [10.0.0.1]}]'), (e: Error) => e instanceof HostError && /interfaces\.0\.addresses\.0/.test(e.message));
  assert.throws(() => parseHost('interfaces: [{name: eth0}]\nroutes: [{dst: default, via: 10.0.0.1, dev: eth9}]'), /routes\.0\.dev: no interface named eth9/);
  assert.throws(() => parseHost('interfaces: [{name: eth0}]\nsockets: [{proto: sctp, port: 1}]'), /sockets\.0\.proto/);
  assert.throws(() => parseHost('interfaces: [{name: eth0, mtu: 1500}]'), /interfaces\.0/);
  assert.throws(() => parseHost('{ not yaml'), HostError);
});

test('the local table wins over main, and all of 127/8 is local', () => {
  const h = defaultPodHost();
  assert.equal(route(h, ip('10.244.0.13'))?.type, 'local');
  assert.equal(route(h, ip('127.8.9.10'))?.type, 'local');
  assert.ok(isLocal(h, ip('127.0.0.2')));
  assert.ok(!isLocal(h, ip('10.244.0.14')));
});

test('routing takes the longest prefix and picks the device address as source', () => {
  const h = hostFromText({
    interfaces: [{ name: 'eth0', addresses: ['10.0.0.2/24'] }, { name: 'eth1', addresses: ['10.1.0.2/16'] }],
    routes: [{ dst: 'default', via: '10.0.0.1', dev: 'eth0' }, { dst: '10.1.5.0/24', via: '10.0.0.9', dev: 'eth0' }],
  });
  const far = route(h, ip('8.8.8.8'))!;
  assert.deepEqual([far.dev, far.via?.value, far.src?.value], ['eth0', ip('10.0.0.1').value, ip('10.0.0.2').value]);
  assert.equal(route(h, ip('10.1.5.7'))!.dev, 'eth0', '/24 beats the connected /16');
  const near = route(h, ip('10.1.9.9'))!;
  assert.deepEqual([near.dev, near.via, near.src?.value], ['eth1', undefined, ip('10.1.0.2').value]);
  assert.equal(route(h, ip('fd00::1')), undefined, 'no v6 route');
});

test('an exact bind takes the packet before a wildcard, and a dual-stack v6 socket takes v4', () => {
  const h = hostFromText({
    interfaces: [{ name: 'eth0', addresses: ['10.0.0.2/24'] }],
    sockets: [{ proto: 'tcp', addr: '::', port: 80, uid: 1 }, { proto: 'tcp', addr: '10.0.0.2', port: 80, uid: 2 }, { proto: 'udp', addr: '::', port: 53, uid: 3, v6only: true }],
  });
  assert.equal(findSocket(h, 'tcp', ip('10.0.0.2'), 80)?.uid, 2);
  assert.equal(findSocket(h, 'tcp', ip('127.0.0.1'), 80)?.uid, 1);
  assert.equal(findSocket(h, 'udp', ip('10.0.0.2'), 53), undefined, 'v6only sockets take no v4');
  assert.equal(findSocket(h, 'tcp', ip('10.0.0.2'), 81), undefined);
});

test('a host survives a round trip through its text form', () => {
  const h = defaultPodHost([{ proto: 'tcp', addr: '0.0.0.0', port: 8080, uid: 1000, process: 'app' }]);
  assert.deepEqual(hostFromText(hostToText(h)), h);
});
