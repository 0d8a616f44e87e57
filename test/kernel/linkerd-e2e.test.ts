/**
 * Real TCP through the rules `init linkerd` installs: each case asserts which socket a connection
 * landed on and which original destination the proxy read with SO_ORIGINAL_DST — on the legacy and
 * the nft backend. App as uid 1000 on 8080 and 4191; the proxy (podtables proxy) as uid 2102 on
 * 4143/4140; a remote host; a node that DNATs a ClusterIP back to the pod. The trace engine, fed the
 * same generated rules and a model of the pod, must land every connection where the kernel did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needKernel } from '../support/kernel';
import { cliBundle, podtables } from '../support/cli';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { hostFromText } from '../../src/model/host';
import { linkerdRuleset, validateLinkerdFlags } from '../../src/mesh/linkerd';
import { CLUSTER_IP, IGNORED_SRC, IGNORED_SRC6, NODE_POD_SIDE, POD_IP, POD_IP6, PodNet, REMOTE_IP, REMOTE_IP6, type Proc } from '../support/pod-net';

const APP = 1000;
const PROXY = 2102;
const INIT_FLAGS = ['-p', '4143', '-o', '4140', '-u', String(PROXY), '--inbound-ports-to-ignore', '4190,4191', '--outbound-ports-to-ignore', '5432', '--subnets-to-ignore', '10.79.0.0/24,fd79::/64'];

/** Where the simulator says a packet lands, in the words the kernel side reports: local endpoint, socket uid, SO_ORIGINAL_DST. */
function simulator(): (spec: string) => { disposition: string; local?: string; uid?: number; orig?: string } {
  const res = validateLinkerdFlags({
    incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: String(PROXY),
    inboundPortsToIgnore: ['4190,4191'], outboundPortsToIgnore: ['5432'], subnetsToIgnore: ['10.79.0.0/24,fd79::/64'],
  });
  const sock = (addr: string, port: number, uid: number, v6only?: boolean) => ({ proto: 'tcp' as const, addr, port, uid, v6only });
  // the pod as the kernel test builds it: the app on :: (dual stack), the proxy on one socket per family
  const host = hostFromText({
    name: 'pod',
    interfaces: [{ name: 'lo', addresses: ['127.0.0.1/8', '::1/128'] }, { name: 'eth0', addresses: [`${POD_IP}/24`, `${POD_IP6}/64`] }],
    routes: [{ dst: 'default', via: NODE_POD_SIDE, dev: 'eth0' }, { dst: 'default', via: 'fd77::1', dev: 'eth0' }],
    sockets: [sock('::', 8080, APP, false), sock('::', 4191, APP, false), ...[4143, 4140].flatMap((p) => [sock('0.0.0.0', p, PROXY), sock('::', p, PROXY, true)])],
  });
  const engine = new Engine(host, [linkerdRuleset(res.options!, 'ipv4'), linkerdRuleset(res.options!, 'ipv6')]);
  const ep = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  return (spec) => {
    engine.flows.clear();
    const r = engine.trace(parsePacketSpec(spec)).result;
    if (r.disposition !== 'local') return { disposition: r.disposition };
    return { disposition: 'local', local: ep(r.packet.dst, r.packet.dport), uid: r.socket?.uid, orig: r.origDst ? ep(r.origDst.addr, r.origDst.port) : undefined };
  };
}

for (const backend of ['legacy', 'nft'] as const) {
  test(`linkerd e2e: connections land where the rules send them, and where the simulator says (${backend})`, async (t) => {
    if (!needKernel(t)) return;
    const net = new PodNet();
    try {
      await net.up();
      const init = await podtables(['init', 'linkerd', ...INIT_FLAGS, '--iptables-mode', backend, '--netns', net.pod]);
      assert.equal(init.code, 0, init.stderr);
      await net.server(net.pod, 'app', [8080, 4191], APP);
      await net.server(net.remote, 'remote', [80, 5432]);
      const proxy = net.start(net.pod, [process.execPath, await cliBundle(), 'proxy', '--inbound', '4143', '--outbound', '4140', '--uid', String(PROXY), '--log-format', 'json']);
      await proxy.waitFor((e) => e.event === 'listening' && e.listener === 'outbound' && e.uid === PROXY);
      const accepted = (p: Proc, peer: string) => p.waitFor((e) => e.event === 'accept' && e.peer === peer, 5000);
      const noProxy = (peer: string) => assert.ok(!proxy.events.some((e) => e.peer === peer), `proxy saw ${peer}`);
      // the simulator, given the same generated rules, must land each connection where the kernel did
      const sim = simulator();
      const viaProxy = (a: Record<string, unknown>) => ({ disposition: 'local', local: a.local, uid: PROXY, orig: a.orig });
      const atApp = (reply: Record<string, unknown>) => ({ disposition: 'local', local: reply.local, uid: reply.uid, orig: reply.local });

      await t.test('inbound to 8080 lands on the proxy with original destination podIP:8080, then on the app', async () => {
        const c = await net.connect(net.remote, POD_IP, 8080, 'in-8080');
        const a = await accepted(proxy, c.local);
        assert.equal(a.listener, 'inbound');
        assert.equal(a.orig, `${POD_IP}:8080`);
        assert.equal(c.reply.server, 'app');
        assert.equal(c.reply.port, 8080);
        assert.equal(c.reply.token, 'in-8080', 'the app got the relayed request');
        const relay = await proxy.waitFor((e) => e.event === 'connected' && e.peer === c.local);
        // the app's peer is the proxy's own connection, not the remote client
        assert.equal(c.reply.peer, relay.via);
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:8080 in eth0`), viaProxy(a));
      });

      await t.test('inbound to an ignored port (4191) lands on the app directly', async () => {
        const c = await net.connect(net.remote, POD_IP, 4191, 'in-4191');
        assert.equal(c.reply.server, 'app');
        assert.equal(c.reply.port, 4191);
        assert.equal(c.reply.peer, c.local);
        noProxy(c.local);
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:4191 in eth0`), atApp(c.reply));
      });

      await t.test('inbound from an ignored subnet lands on the app directly', async () => {
        const c = await net.connect(net.remote, POD_IP, 8080, 'in-subnet', { bind: IGNORED_SRC });
        assert.match(c.local, new RegExp(`^${IGNORED_SRC.replace(/\./g, '\\.')}:`));
        assert.equal(c.reply.server, 'app');
        assert.equal(c.reply.peer, c.local);
        noProxy(c.local);
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:8080 in eth0`), atApp(c.reply));
      });

      await t.test('outbound from the app to remote:80 lands on the proxy, whose own connection reaches the remote', async () => {
        const c = await net.connect(net.pod, REMOTE_IP, 80, 'out-80', { uid: APP });
        const a = await accepted(proxy, c.local);
        assert.equal(a.listener, 'outbound');
        assert.equal(a.orig, `${REMOTE_IP}:80`);
        const relay = await proxy.waitFor((e) => e.event === 'connected' && e.peer === c.local);
        assert.equal(c.reply.server, 'remote');
        // the remote saw the proxy's connection (uid 2102 is not redirected again)
        assert.equal(c.reply.peer, relay.via);
        assert.notEqual(c.reply.peer, c.local);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${APP}`), viaProxy(a));
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${PROXY}`), { disposition: 'out' });
      });

      await t.test('outbound to an ignored port (5432) bypasses the proxy', async () => {
        const c = await net.connect(net.pod, REMOTE_IP, 5432, 'out-5432', { uid: APP });
        assert.equal(c.reply.server, 'remote');
        assert.equal(c.reply.peer, c.local);
        noProxy(c.local);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:5432 uid ${APP}`), { disposition: 'out' });
      });

      await t.test('the app calling itself via 127.0.0.1 and via its pod IP reaches itself directly', async () => {
        for (const host of ['127.0.0.1', POD_IP]) {
          const c = await net.connect(net.pod, host, 8080, `self-${host}`, { uid: APP });
          assert.equal(c.reply.server, 'app');
          assert.equal(c.reply.local, `${host}:8080`);
          assert.equal(c.reply.peer, c.local);
          noProxy(c.local);
          assert.deepEqual(sim(`tcp -> ${host}:8080 uid ${APP}`), atApp(c.reply));
        }
      });

      await t.test('the app calling a ClusterIP DNATed back to itself goes through the proxy twice, then to the app', async () => {
        const c = await net.connect(net.pod, CLUSTER_IP, 80, 'cluster-ip', { uid: APP });
        const out = await accepted(proxy, c.local);
        assert.equal(out.listener, 'outbound');
        assert.equal(out.orig, `${CLUSTER_IP}:80`);
        const outRelay = await proxy.waitFor((e) => e.event === 'connected' && e.peer === c.local);
        // the proxy's connection left the pod, was DNATed and masqueraded by the node, and came
        // back in: the inbound side sees the node's address with the proxy's port
        const port = String(outRelay.via).split(':')[1];
        const inbound = await accepted(proxy, `${NODE_POD_SIDE}:${port}`);
        assert.equal(inbound.listener, 'inbound');
        assert.equal(inbound.orig, `${POD_IP}:8080`);
        const inRelay = await proxy.waitFor((e) => e.event === 'connected' && e.peer === `${NODE_POD_SIDE}:${port}`);
        assert.equal(c.reply.server, 'app');
        assert.equal(c.reply.port, 8080);
        assert.equal(c.reply.peer, inRelay.via);
        // the pod's two legs through the simulator (the node's DNAT is not in the pod's rules)
        assert.deepEqual(sim(`tcp -> ${CLUSTER_IP}:80 uid ${APP}`), viaProxy(out));
        assert.deepEqual(sim(`tcp -> ${CLUSTER_IP}:80 uid ${PROXY}`), { disposition: 'out' });
        assert.deepEqual(sim(`tcp ${NODE_POD_SIDE}:${port} -> ${POD_IP}:8080 in eth0`), viaProxy(inbound));
      });

      await t.test('IPv6: inbound and outbound are redirected with the v6 original destination (SOL_IPV6)', async () => {
        // bound: with two addresses on the link, source selection might pick the ignored one
        const i = await net.connect(net.remote, POD_IP6, 8080, 'in6', { bind: REMOTE_IP6 });
        const a = await accepted(proxy, i.local);
        assert.equal(a.orig, `[${POD_IP6}]:8080`);
        assert.equal(i.reply.server, 'app');
        assert.deepEqual(sim(`tcp ${i.local} -> [${POD_IP6}]:8080 in eth0`), viaProxy(a));
        const o = await net.connect(net.pod, REMOTE_IP6, 80, 'out6', { uid: APP });
        const b = await accepted(proxy, o.local);
        assert.equal(b.listener, 'outbound');
        assert.equal(b.orig, `[${REMOTE_IP6}]:80`);
        assert.equal(o.reply.server, 'remote');
        assert.deepEqual(sim(`tcp -> [${REMOTE_IP6}]:80 uid ${APP}`), viaProxy(b));
        // the mixed subnet list gave fd79::/64 to ip6tables only: a v6 source there skips the proxy
        const skipped = await net.connect(net.remote, POD_IP6, 8080, 'in6-subnet', { bind: IGNORED_SRC6 });
        assert.equal(skipped.reply.server, 'app');
        assert.equal(skipped.reply.peer, skipped.local);
        noProxy(skipped.local);
        assert.deepEqual(sim(`tcp ${skipped.local} -> [${POD_IP6}]:8080 in eth0`), atApp(skipped.reply));
      });
    } finally {
      await net.close();
    }
  });
}
