/**
 * `podtables init istio` on the real kernel: the tables it leaves equal the generator's (both
 * backends, both families), it is idempotent, `clean` restores the namespace byte for byte, and
 * real TCP lands where Istio's sidecar rules send it (REDIRECT, and TPROXY with the simulator
 * landing every connection where the kernel did).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptables, needKernel, save, withNetns, restore, type Backend } from '../support/kernel';
import { cliBundle, podtables } from '../support/cli';
import { PodNet, CLUSTER_IP, IGNORED_SRC, NODE_POD_SIDE, POD_IP, POD_IP6, REMOTE_IP, REMOTE_IP6, type Proc } from '../support/pod-net';
import { inNetnsOk } from '../../src/kernel/netns';
import { hostFromText } from '../../src/model/host';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { ISTIO_DEFAULTS, istioRules, type IstioOptions } from '../../src/mesh/istio';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';

const canonical = (text: string, family: 'ipv4' | 'ipv6') => saveRuleset(parseRestore(text, { family }).ruleset);
const tablesOf = (text: string, family: 'ipv4' | 'ipv6', names: string[]) =>
  saveRuleset({ ...parseRestore(text, { family }).ruleset, tables: parseRestore(text, { family }).ruleset.tables.filter((t) => names.includes(t.name)) });

const PRE_EXISTING = [
  '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]',
  '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-A OUTPUT -d 192.0.2.7/32 -p udp -j RETURN', 'COMMIT',
  '*filter', ':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', '-A INPUT -i lo -j ACCEPT', '-A INPUT -p tcp -j ACCEPT', 'COMMIT', '',
].join('\n');

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`istio ${backend}: init leaves the generator's tables, again and again, and clean leaves the namespace as it was`, async (t) => {
    if (!needKernel(t)) return;
    await withNetns(async (ns) => {
      const r0 = await restore(ns, PRE_EXISTING, backend);
      assert.equal(r0.code, 0, r0.stderr);
      const before = await save(ns, backend);
      const flags = ['--netns', ns, '--iptables-mode', backend, '-b', '*', '-d', '15090,15021', '-i', '*', '-x', '10.96.0.0/12', '--redirect-dns', '--capture-all-dns'];
      const init = await podtables(['init', 'istio', ...flags]);
      assert.equal(init.code, 0, init.stderr);
      const gen = istioRules({ ...ISTIO_DEFAULTS, inboundPortsInclude: '*', inboundPortsExclude: '15090,15021', outboundIpRangesInclude: '*', outboundIpRangesExclude: '10.96.0.0/12', redirectDns: true, captureAllDns: true });
      const live = await save(ns, backend);
      // every ISTIO_ chain exactly as generated
      const ours = (text: string) => canonical(text, 'ipv4').split('\n').filter((l) => /ISTIO_/.test(l)).join('\n');
      assert.equal(ours(live), ours(saveRuleset(gen.v4)));
      assert.match(live, /-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES/, 'the user rules stay');
      for (let i = 0; i < 3; i++) assert.equal((await podtables(['init', 'istio', ...flags])).code, 0);
      assert.equal(canonical(await save(ns, backend), 'ipv4'), canonical(live, 'ipv4'), 'running it again changes nothing');
      const v = await podtables(['verify', 'istio', ...flags]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      // other flags: the chains are refilled, nothing doubles
      const other = await podtables(['init', 'istio', ...flags.filter((f) => f !== '15090,15021' && f !== '-d'), '-d', '15020']);
      assert.equal(other.code, 0, other.stderr);
      const after = await iptables(ns, backend, ['-t', 'nat', '-S', 'ISTIO_INBOUND']);
      assert.match(after, /--dport 15020 -j RETURN/);
      assert.doesNotMatch(after, /15090/);
      const drift = await podtables(['verify', 'istio', ...flags]);
      assert.equal(drift.code, 1, 'verify with the old flags sees the change');
      assert.match(drift.stdout, /ISTIO_INBOUND/);
      const clean = await podtables(['clean', 'istio', ...flags]);
      assert.equal(clean.code, 0, clean.stderr);
      // a table init brought into being stays, empty (the kernel keeps a legacy table until the
      // namespace goes); everything else is as it was
      const emptyDropped = (text: string) => {
        const rs = parseRestore(text, { family: 'ipv4' }).ruleset;
        rs.tables = rs.tables.filter((tb) => tb.chains.some((c) => c.rules.length || (c.policy && c.policy !== 'ACCEPT') || !c.policy));
        return saveRuleset(rs);
      };
      assert.equal(emptyDropped(await save(ns, backend)), emptyDropped(before), 'clean leaves exactly what was there');
    });
  });
}

test('istio TPROXY: mangle rules and the policy route are installed and removed; IPv6 with dual stack', async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    const flags = ['--netns', ns, '--iptables-mode', 'nft', '-m', 'TPROXY', '-b', '*', '-i', '*', '--dual-stack'];
    const init = await podtables(['init', 'istio', ...flags]);
    assert.equal(init.code, 0, init.stderr);
    const gen = istioRules({ ...ISTIO_DEFAULTS, interceptionMode: 'TPROXY', inboundPortsInclude: '*', outboundIpRangesInclude: '*', ipv6: true });
    for (const [fam, rs] of [['ipv4', gen.v4], ['ipv6', gen.v6!]] as const) {
      const live = await save(ns, 'nft', fam);
      assert.equal(tablesOf(live, fam, ['mangle', 'nat']), tablesOf(saveRuleset(rs), fam, ['mangle', 'nat']), `${fam} tables`);
    }
    assert.match(await inNetnsOk(ns, 'ip', ['-4', 'rule', 'show']), /fwmark 0x539 lookup 133/);
    assert.match(await inNetnsOk(ns, 'ip', ['-6', 'route', 'show', 'table', '133']), /local default dev lo/);
    // envoy's IPv6 inbound passthrough source, which istio-iptables adds to lo with IPv6 on
    assert.match(await inNetnsOk(ns, 'ip', ['-6', 'addr', 'show', 'dev', 'lo']), /inet6 ::6\/128/);
    const clean = await podtables(['clean', 'istio', ...flags]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(await inNetnsOk(ns, 'ip', ['-4', 'rule', 'show']), /lookup 133/);
    assert.doesNotMatch(await inNetnsOk(ns, 'ip', ['-6', 'addr', 'show', 'dev', 'lo']), /::6\//);
    assert.doesNotMatch(await save(ns, 'nft'), /ISTIO_/);
  });
});

test('istio: bad flag values exit 2 naming the value, and change nothing', async (t) => {
  if (!needKernel(t)) return;
  await withNetns(async (ns) => {
    const before = await save(ns, 'legacy');
    for (const [flag, value] of [['-p', '99999'], ['-b', '80,abc'], ['-i', '10.0.0.0/40'], ['-m', 'MAGIC'], ['-u', 'nobody-at-all']]) {
      const r = await podtables(['init', 'istio', '--netns', ns, '--iptables-mode', 'legacy', flag, value]);
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.ok(r.stderr.includes(value.split(',').pop()!.replace('10.0.0.0/40', '10.0.0.0/40')), `${flag}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /at .*\.m?js:\d+/, 'no stack trace');
    }
    assert.equal(await save(ns, 'legacy'), before);
  });
});

const APP = 1000;
const ENVOY = 1337;
/** An address the pod does not own; the node routes it to the pod (TPROXY's case: no NAT could land it). */
const FOREIGN_IP = '10.90.0.5';
const TPROXY_FLAGS = ['-m', 'TPROXY', '-b', '*', '-d', '9090', '-i', '*', '-u', String(ENVOY), '--dual-stack'];
const TPROXY_OPTIONS = { ...ISTIO_DEFAULTS, interceptionMode: 'TPROXY' as const, inboundPortsInclude: '*', inboundPortsExclude: '9090', outboundIpRangesInclude: '*', proxyUid: String(ENVOY), ipv6: true };

type Landing = { disposition: string; server?: unknown; port?: unknown; local?: unknown; uid?: unknown; orig?: unknown; chain?: string | null; assumed?: string[] };
const endpointText = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
/** Where the kernel landed a connection, as the accepting server reported it. */
const landed = (reply: Record<string, unknown>): Landing => ({ disposition: 'local', server: reply.server, port: reply.port, local: reply.local, uid: reply.uid });

/**
 * The trace engine over the generated rules and the pod as the test builds it (every server
 * on :: dual stack, envoy's listeners transparent or not): where it lands a packet, in the words of
 * `landed` (the socket's process is the server's name), and what it assumed when it had to; with
 * `orig`, a local landing also names conntrack's original destination (what SO_ORIGINAL_DST reads).
 */
function istioSimulator(options: IstioOptions, transparent: boolean, orig = false): (spec: string) => Landing {
  const sock = (port: number, uid: number, process: string, tr = false) => ({ proto: 'tcp' as const, addr: '::', port, uid, process, transparent: tr, v6only: false });
  const host = hostFromText({
    name: 'pod',
    // ::6 on lo: `init istio --dual-stack` adds it, as istio-iptables does
    interfaces: [{ name: 'lo', addresses: ['127.0.0.1/8', '::1/128', '::6/128'] }, { name: 'eth0', addresses: [`${POD_IP}/24`, `${POD_IP6}/64`] }],
    routes: [{ dst: 'default', via: NODE_POD_SIDE, dev: 'eth0' }, { dst: 'default', via: 'fd77::1', dev: 'eth0' }],
    sockets: [sock(8080, APP, 'app'), sock(9090, APP, 'app'), sock(15006, ENVOY, 'envoy', transparent), sock(15001, ENVOY, 'envoy', transparent)],
  });
  const gen = istioRules(options);
  const engine = new Engine(host, gen.v6 ? [gen.v4, gen.v6] : [gen.v4]);
  return (spec) => {
    engine.flows.clear();
    const t = engine.trace(parsePacketSpec(spec));
    const r = t.result;
    const assumed = t.assumptions.length ? { assumed: t.assumptions } : {};
    if (r.disposition === 'drop') return { disposition: 'drop', chain: r.at?.chain, ...assumed };
    if (r.disposition !== 'local' || !r.socket) return { disposition: r.disposition, ...assumed };
    const od = orig && r.origDst ? { orig: endpointText(r.origDst.addr, r.origDst.port) } : {};
    return { disposition: 'local', server: r.socket.process, port: r.socket.port, local: endpointText(r.packet.dst, r.packet.dport), uid: r.socket.uid, ...od, ...assumed };
  };
}

/** Packets the TPROXY rule of a family has seen (its counter in `iptables-save -c`). */
async function tproxyPackets(ns: string, backend: Backend, family: 'ipv4' | 'ipv6'): Promise<number> {
  const m = /^\[(\d+):\d+\] -A ISTIO_TPROXY .*-j TPROXY/m.exec(await save(ns, backend, family, ['-c', '-t', 'mangle']));
  assert.ok(m, `no TPROXY rule in ${family} mangle`);
  return Number(m[1]);
}
const tproxySimulator = (transparent: boolean) => istioSimulator(TPROXY_OPTIONS, transparent);

/**
 * Bring `net` up and set its pod up with `init istio FLAGS`: its live `tables`, both families, must
 * be what the generator makes of `options`, which is what the simulator runs.
 */
async function istioPod(net: PodNet, backend: Backend, flags: string[], options: IstioOptions, tables: string[]): Promise<void> {
  await net.up();
  const init = await podtables(['init', 'istio', '--netns', net.pod, '--iptables-mode', backend, ...flags]);
  assert.equal(init.code, 0, init.stderr);
  const gen = istioRules(options);
  for (const [fam, rs] of [['ipv4', gen.v4], ['ipv6', gen.v6!]] as const)
    assert.equal(tablesOf(await save(net.pod, backend, fam), fam, tables), tablesOf(saveRuleset(rs), fam, tables), `the simulator runs the ${fam} rules the kernel holds`);
}

const REDIRECT_FLAGS = ['-b', '*', '-d', '9090', '-i', '*', '-x', `${IGNORED_SRC}/32`, '-o', '5432', '-u', String(ENVOY), '--dual-stack'];
const REDIRECT_OPTIONS: IstioOptions = {
  ...ISTIO_DEFAULTS, inboundPortsInclude: '*', inboundPortsExclude: '9090', outboundIpRangesInclude: '*',
  outboundIpRangesExclude: `${IGNORED_SRC}/32`, outboundPortsExclude: '5432', proxyUid: String(ENVOY), ipv6: true,
};
/**
 * Envoy's inbound passthrough source: ISTIO_OUTPUT lets `-s 127.0.0.6/32 -o lo` through before
 * anything else. Relaying from the pod IP instead, as uid 1337 out lo, matches ISTIO_OUTPUT's
 * `! -d 127.0.0.1/32 -o lo … --uid-owner 1337 -j ISTIO_IN_REDIRECT`: REDIRECT sends the relay back
 * to 15006, whose relay is redirected again, endlessly (experiment: one inbound connection made the
 * proxy log ~30,000 accepts and relays within a second, and the client got no answer). So the
 * proxy standing in for envoy relays inbound from it (`podtables proxy --inbound-source`).
 */
const PASSTHROUGH_SRC = '127.0.0.6';

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`istio REDIRECT with real TCP (${backend}): podtables proxy as envoy reads each original destination, excluded ports and ranges and loopback go straight through, a ClusterIP to the pod itself passes envoy twice, each where the simulator says`, async (t) => {
    if (!needKernel(t)) return;
    const net = new PodNet();
    try {
      await istioPod(net, backend, REDIRECT_FLAGS, REDIRECT_OPTIONS, ['nat']);
      assert.match(await inNetnsOk(net.pod, 'ip', ['-6', 'addr', 'show', 'dev', 'lo']), /inet6 ::6\/128/, 'init added the IPv6 passthrough address');
      await net.server(net.pod, 'app', [8080, 9090], APP);
      await net.server(net.remote, 'remote', [80, 5432, 9090]);
      const envoy = net.start(net.pod, [process.execPath, await cliBundle(), 'proxy', '--inbound', '15006', '--outbound', '15001', '--uid', String(ENVOY), '--inbound-source', `${PASSTHROUGH_SRC},::6`, '--log-format', 'json']);
      await envoy.waitFor((e) => e.event === 'listening' && e.listener === 'outbound' && e.uid === ENVOY);
      const sim = istioSimulator(REDIRECT_OPTIONS, false, true);
      const accepted = (peer: string) => envoy.waitFor((e) => e.event === 'accept' && e.peer === peer, 5000);
      const relayed = (peer: string) => envoy.waitFor((e) => e.event === 'connected' && e.peer === peer, 5000);
      const noEnvoy = (peer: string) => assert.ok(!envoy.events.some((e) => e.peer === peer), `envoy saw ${peer}`);
      /** A landing on envoy, from its accept event (SO_ORIGINAL_DST is `orig`). */
      const atEnvoy = (a: Record<string, unknown>): Landing => ({ disposition: 'local', server: 'envoy', port: Number(String(a.local).split(':').pop()), local: a.local, uid: ENVOY, orig: a.orig });
      /** A landing on the app, unredirected: conntrack's original destination is where it landed. */
      const atApp = (reply: Record<string, unknown>): Landing => ({ ...landed(reply), orig: reply.local });
      /** Envoy's relay to the app: from 127.0.0.6, landing on the app, as the simulator says too. */
      const throughPassthrough = async (peer: string, reply: Record<string, unknown>) => {
        const relay = await relayed(peer);
        assert.equal(relay.upstream, `${POD_IP}:8080`);
        assert.match(String(relay.via), /^127\.0\.0\.6:\d+$/);
        assert.deepEqual([reply.server, reply.local, reply.uid, reply.peer], ['app', `${POD_IP}:8080`, APP, relay.via], 'the app got the relayed request');
        assert.deepEqual(sim(`tcp ${relay.via} -> ${POD_IP}:8080 uid ${ENVOY}`), atApp(reply));
      };

      await t.test('inbound to podIP:8080 lands on 15006 with original destination podIP:8080, and envoy relays it to the app from 127.0.0.6', async () => {
        const c = await net.connect(net.remote, POD_IP, 8080, 'in');
        const a = await accepted(c.local);
        // REDIRECT in PREROUTING rewrites the destination to the address of the arriving interface
        assert.deepEqual([a.listener, a.local, a.orig], ['inbound', `${POD_IP}:15006`, `${POD_IP}:8080`]);
        assert.equal(c.reply.token, 'in');
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:8080 in eth0`), atEnvoy(a));
        await throughPassthrough(c.local, c.reply);
      });

      await t.test('IPv6: inbound to [podIP6]:8080 lands on 15006 with that original destination and reaches the app from ::6; outbound lands on [::1]:15001', async () => {
        await net.ipv6Ready();
        // bound: with two addresses on the remote's link, source selection might pick the other one
        const c = await net.connect(net.remote, POD_IP6, 8080, 'in6', { bind: REMOTE_IP6 });
        const a = await accepted(c.local);
        assert.deepEqual([a.listener, a.local, a.orig], ['inbound', `[${POD_IP6}]:15006`, `[${POD_IP6}]:8080`]);
        assert.deepEqual(sim(`tcp ${c.local} -> [${POD_IP6}]:8080 in eth0`), atEnvoy(a));
        const relay = await relayed(c.local);
        assert.equal(relay.upstream, `[${POD_IP6}]:8080`);
        assert.match(String(relay.via), /^\[::6\]:\d+$/);
        assert.deepEqual([c.reply.server, c.reply.local, c.reply.uid, c.reply.peer], ['app', `[${POD_IP6}]:8080`, APP, relay.via], 'the app got the relayed request');
        assert.deepEqual(sim(`tcp ${relay.via} -> [${POD_IP6}]:8080 uid ${ENVOY}`), atApp(c.reply));
        const o = await net.connect(net.pod, REMOTE_IP6, 80, 'out6', { uid: APP });
        const b = await accepted(o.local);
        assert.deepEqual([b.listener, b.local, b.orig], ['outbound', '[::1]:15001', `[${REMOTE_IP6}]:80`]);
        assert.deepEqual([o.reply.server, o.reply.local], ['remote', `[${REMOTE_IP6}]:80`]);
        assert.deepEqual(sim(`tcp -> [${REMOTE_IP6}]:80 uid ${APP}`), atEnvoy(b));
      });

      await t.test('inbound to the excluded port 9090 lands on the app directly', async () => {
        const c = await net.connect(net.remote, POD_IP, 9090, 'ex');
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'app', port: 9090, local: `${POD_IP}:9090`, uid: APP });
        assert.equal(c.reply.peer, c.local);
        noEnvoy(c.local);
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:9090 in eth0`), atApp(c.reply));
      });

      await t.test('outbound from the app to remote:80 lands on 127.0.0.1:15001 with original destination remote:80, and envoy (uid 1337) reaches the remote', async () => {
        const c = await net.connect(net.pod, REMOTE_IP, 80, 'out', { uid: APP });
        const a = await accepted(c.local);
        assert.deepEqual([a.listener, a.local, a.orig], ['outbound', '127.0.0.1:15001', `${REMOTE_IP}:80`]);
        const relay = await relayed(c.local);
        assert.equal(relay.upstream, `${REMOTE_IP}:80`);
        // the remote saw envoy's own connection, which ISTIO_OUTPUT returns for uid 1337
        assert.deepEqual([c.reply.server, c.reply.local, c.reply.peer], ['remote', `${REMOTE_IP}:80`, relay.via]);
        assert.notEqual(c.reply.peer, c.local);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${APP}`), atEnvoy(a));
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${ENVOY}`), { disposition: 'out' });
      });

      await t.test("the proxy's own outbound (uid 1337) reaches the remote directly", async () => {
        const own = await net.connect(net.pod, REMOTE_IP, 80, 'own', { uid: ENVOY });
        assert.deepEqual([own.reply.server, own.reply.port, own.reply.local, own.reply.peer], ['remote', 80, `${REMOTE_IP}:80`, own.local]);
        noEnvoy(own.local);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${ENVOY}`), { disposition: 'out' });
      });

      await t.test('outbound to the excluded port 5432 (-o) and to the excluded range (-x) bypasses envoy', async () => {
        for (const [host, port] of [[REMOTE_IP, 5432], [IGNORED_SRC, 80]] as const) {
          const c = await net.connect(net.pod, host, port, `bypass-${host}-${port}`, { uid: APP });
          assert.deepEqual([c.reply.server, c.reply.local, c.reply.peer], ['remote', `${host}:${port}`, c.local]);
          noEnvoy(c.local);
          assert.deepEqual(sim(`tcp -> ${host}:${port} uid ${APP}`), { disposition: 'out' });
        }
        // a port only excluded inbound (-d 9090) is still captured outbound
        const c = await net.connect(net.pod, REMOTE_IP, 9090, 'captured-9090', { uid: APP });
        const a = await accepted(c.local);
        assert.deepEqual([a.listener, a.orig, c.reply.server], ['outbound', `${REMOTE_IP}:9090`, 'remote']);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:9090 uid ${APP}`), atEnvoy(a));
      });

      await t.test('the app calling itself via 127.0.0.1 and via its pod IP reaches itself directly: loopback is never captured', async () => {
        for (const host of ['127.0.0.1', POD_IP]) {
          const c = await net.connect(net.pod, host, 8080, `self-${host}`, { uid: APP });
          assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'app', port: 8080, local: `${host}:8080`, uid: APP });
          assert.equal(c.reply.peer, c.local);
          noEnvoy(c.local);
          assert.deepEqual(sim(`tcp -> ${host}:8080 uid ${APP}`), atApp(c.reply));
        }
      });

      await t.test('envoy calling its own pod IP from the pod IP is sent to its inbound port 15006 (the reason for the 127.0.0.6 passthrough source)', async () => {
        const c = await net.connect(net.pod, POD_IP, 8080, 'envoy-self', { uid: ENVOY, bind: POD_IP });
        const a = await accepted(c.local);
        // OUTPUT's REDIRECT rewrites to 127.0.0.1, the address REDIRECT uses for locally made packets
        assert.deepEqual([a.listener, a.local, a.orig], ['inbound', '127.0.0.1:15006', `${POD_IP}:8080`]);
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:8080 uid ${ENVOY}`), atEnvoy(a));
        await throughPassthrough(c.local, c.reply);
      });

      await t.test('the app calling a ClusterIP the node DNATs back to this pod lands on 15001, then, back through eth0, on 15006, then on the app', async () => {
        const c = await net.connect(net.pod, CLUSTER_IP, 80, 'cluster-ip', { uid: APP });
        const out = await accepted(c.local);
        assert.deepEqual([out.listener, out.local, out.orig], ['outbound', '127.0.0.1:15001', `${CLUSTER_IP}:80`]);
        const outRelay = await relayed(c.local);
        // envoy's connection (uid 1337: RETURN) left the pod, the node DNATed it to podIP:8080 and
        // masqueraded it, and it came back in on eth0 from the node's address with envoy's port
        const [via, port] = String(outRelay.via).split(':');
        assert.equal(via, POD_IP);
        const inbound = await accepted(`${NODE_POD_SIDE}:${port}`);
        // Istio's rules send it to envoy's inbound port: to the pod's conntrack the returning
        // connection is a new one arriving on eth0 for podIP:8080, and ISTIO_INBOUND captures every
        // port but 15008 and -d's, whoever sent it; nothing marks it as the pod's own
        assert.deepEqual([inbound.listener, inbound.local, inbound.orig], ['inbound', `${POD_IP}:15006`, `${POD_IP}:8080`]);
        await throughPassthrough(`${NODE_POD_SIDE}:${port}`, c.reply);
        // the pod's legs through the simulator (the node's DNAT is not in the pod's rules)
        assert.deepEqual(sim(`tcp -> ${CLUSTER_IP}:80 uid ${APP}`), atEnvoy(out));
        assert.deepEqual(sim(`tcp -> ${CLUSTER_IP}:80 uid ${ENVOY}`), { disposition: 'out' });
        assert.deepEqual(sim(`tcp ${NODE_POD_SIDE}:${port} -> ${POD_IP}:8080 in eth0`), atEnvoy(inbound));
      });
    } finally {
      await net.close();
    }
  });
}

for (const backend of ['legacy', 'nft'] as Backend[]) {
  test(`istio TPROXY with real TCP (${backend}): inbound lands on the transparent 15006 listener with the original destination as its local address, the rest as Istio means, and where the simulator says`, async (t) => {
    if (!needKernel(t)) return;
    const net = new PodNet();
    try {
      await istioPod(net, backend, TPROXY_FLAGS, TPROXY_OPTIONS, ['mangle', 'nat']);
      const app = await net.server(net.pod, 'app', [8080, 9090], APP);
      let envoy: Proc = await net.transparentServer(net.pod, 'envoy', [15006, 15001], ENVOY);
      await net.server(net.remote, 'remote', [80]);
      const sim = tproxySimulator(true);

      await t.test('inbound to podIP:8080 lands on 15006 (envoy, uid 1337) whose socket keeps podIP:8080 and the client as peer', async () => {
        const c = await net.connect(net.remote, POD_IP, 8080, 'in');
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'envoy', port: 15006, local: `${POD_IP}:8080`, uid: ENVOY });
        assert.equal(c.reply.peer, c.local, 'nothing rewrote the source either');
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:8080 in eth0`), landed(c.reply));
      });

      await t.test('inbound to the excluded port 9090 lands on the app directly', async () => {
        const c = await net.connect(net.remote, POD_IP, 9090, 'ex');
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'app', port: 9090, local: `${POD_IP}:9090`, uid: APP });
        assert.deepEqual(sim(`tcp ${c.local} -> ${POD_IP}:9090 in eth0`), landed(c.reply));
      });

      await t.test('inbound to an address the pod does not own lands on 15006 with that address as its local one (the fwmark route delivers it)', async () => {
        await inNetnsOk(net.node, 'ip', ['route', 'add', `${FOREIGN_IP}/32`, 'via', POD_IP]);
        const c = await net.connect(net.remote, FOREIGN_IP, 8080, 'foreign');
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'envoy', port: 15006, local: `${FOREIGN_IP}:8080`, uid: ENVOY });
        // the engine has no policy routes: it delivers what TPROXY diverted and names the route it
        // assumes, which is right here, where `init` installed `fwmark 0x539 lookup 133`
        const { assumed, ...where } = sim(`tcp ${c.local} -> ${FOREIGN_IP}:8080 in eth0`);
        assert.deepEqual(where, landed(c.reply));
        assert.match(String(assumed), /^TPROXY: 10\.90\.0\.5 is not a local address: .*policy route sends mark 0x539/);
      });

      await t.test('outbound from the app (uid 1000) to remote:80 lands on 15001 through nat REDIRECT', async () => {
        const c = await net.connect(net.pod, REMOTE_IP, 80, 'out', { uid: APP });
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'envoy', port: 15001, local: '127.0.0.1:15001', uid: ENVOY });
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${APP}`), landed(c.reply));
      });

      await t.test("the proxy's own outbound (uid 1337) reaches the remote directly", async () => {
        const c = await net.connect(net.pod, REMOTE_IP, 80, 'own', { uid: ENVOY });
        assert.deepEqual([c.reply.server, c.reply.port, c.reply.local, c.reply.peer], ['remote', 80, `${REMOTE_IP}:80`, c.local]);
        assert.deepEqual(sim(`tcp -> ${REMOTE_IP}:80 uid ${ENVOY}`), { disposition: 'out' });
      });

      await t.test('the app calling 127.0.0.1 or its pod IP reaches itself: loopback is never captured', async () => {
        for (const host of ['127.0.0.1', POD_IP]) {
          const c = await net.connect(net.pod, host, 8080, `self-${host}`, { uid: APP });
          assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'app', port: 8080, local: `${host}:8080`, uid: APP });
          assert.deepEqual(sim(`tcp -> ${host}:8080 uid ${APP}`), landed(c.reply));
        }
      });

      await t.test('the proxy calling the pod IP is sent to 15006 by nat REDIRECT (mangle sees 127.0.0.1, which TPROXY skips)', async () => {
        const c = await net.connect(net.pod, POD_IP, 8080, 'proxy-self', { uid: ENVOY });
        assert.deepEqual(landed(c.reply), { disposition: 'local', server: 'envoy', port: 15006, local: '127.0.0.1:15006', uid: ENVOY });
        assert.deepEqual(sim(`tcp -> ${POD_IP}:8080 uid ${ENVOY}`), landed(c.reply));
      });

      await t.test('IPv6: inbound lands on 15006 with [podIP6]:8080, 9090 on the app, outbound on 15001, the proxy and ::1 straight through', async () => {
        // bound: with two addresses on the remote's link, source selection might pick the other one
        const i = await net.connect(net.remote, POD_IP6, 8080, 'in6', { bind: REMOTE_IP6 });
        assert.deepEqual(landed(i.reply), { disposition: 'local', server: 'envoy', port: 15006, local: `[${POD_IP6}]:8080`, uid: ENVOY });
        assert.equal(i.reply.peer, i.local);
        assert.deepEqual(sim(`tcp ${i.local} -> [${POD_IP6}]:8080 in eth0`), landed(i.reply));
        const x = await net.connect(net.remote, POD_IP6, 9090, 'ex6', { bind: REMOTE_IP6 });
        assert.deepEqual(landed(x.reply), { disposition: 'local', server: 'app', port: 9090, local: `[${POD_IP6}]:9090`, uid: APP });
        assert.deepEqual(sim(`tcp ${x.local} -> [${POD_IP6}]:9090 in eth0`), landed(x.reply));
        const o = await net.connect(net.pod, REMOTE_IP6, 80, 'out6', { uid: APP });
        assert.deepEqual(landed(o.reply), { disposition: 'local', server: 'envoy', port: 15001, local: '[::1]:15001', uid: ENVOY });
        assert.deepEqual(sim(`tcp -> [${REMOTE_IP6}]:80 uid ${APP}`), landed(o.reply));
        const own = await net.connect(net.pod, REMOTE_IP6, 80, 'own6', { uid: ENVOY });
        assert.deepEqual([own.reply.server, own.reply.peer], ['remote', own.local]);
        assert.deepEqual(sim(`tcp -> [${REMOTE_IP6}]:80 uid ${ENVOY}`), { disposition: 'out' });
        const self = await net.connect(net.pod, '::1', 8080, 'self6', { uid: APP });
        assert.deepEqual(landed(self.reply), { disposition: 'local', server: 'app', port: 8080, local: '[::1]:8080', uid: APP });
        assert.deepEqual(sim(`tcp -> [::1]:8080 uid ${APP}`), landed(self.reply));
      });

      await t.test('without the fwmark rule the address the pod does not own is dropped, while the pod IP still lands on 15006', async () => {
        await inNetnsOk(net.pod, 'ip', ['-4', 'rule', 'del', 'fwmark', '1337', 'lookup', '133']);
        const [, local] = await Promise.all([
          assert.rejects(net.connect(net.remote, FOREIGN_IP, 8080, 'unrouted'), /timeout/),
          net.connect(net.remote, POD_IP, 8080, 'routed'),
        ]);
        assert.deepEqual(landed(local.reply), { disposition: 'local', server: 'envoy', port: 15006, local: `${POD_IP}:8080`, uid: ENVOY });
        for (const p of [envoy, app]) assert.ok(!p.events.some((e) => e.token === 'unrouted'), 'nothing landed');
        // the host model cannot drop the rule: the engine still delivers, on the assumption it names
        assert.match(String(sim(`tcp ${REMOTE_IP}:40000 -> ${FOREIGN_IP}:8080 in eth0`).assumed), /^TPROXY: 10\.90\.0\.5 is not a local address/);
      });

      await t.test('with a listener that is not transparent, TPROXY drops inbound packets: no reset, nothing lands, not even on the app', async () => {
        envoy.child.kill('SIGKILL');
        await new Promise((r) => (envoy.child.exitCode !== null || envoy.child.signalCode !== null ? r(undefined) : envoy.child.once('close', r)));
        envoy = await net.server(net.pod, 'envoy', [15006, 15001], ENVOY);
        const before = await Promise.all([tproxyPackets(net.pod, backend, 'ipv4'), tproxyPackets(net.pod, backend, 'ipv6')]);
        // both at once: each waits out the client's 5 s timeout while the SYNs are retransmitted
        await Promise.all([
          assert.rejects(net.connect(net.remote, POD_IP, 8080, 'opaque'), /timeout/),
          assert.rejects(net.connect(net.remote, POD_IP6, 8080, 'opaque6', { bind: REMOTE_IP6 }), /timeout/),
        ]);
        const after = await Promise.all([tproxyPackets(net.pod, backend, 'ipv4'), tproxyPackets(net.pod, backend, 'ipv6')]);
        assert.ok(after[0] > before[0] && after[1] > before[1], `the SYNs reached the TPROXY rules: ${before} → ${after}`);
        for (const p of [envoy, app]) assert.ok(!p.events.some((e) => String(e.token).startsWith('opaque')), `${p === app ? 'the app' : 'envoy'} got nothing`);
        const plain = tproxySimulator(false);
        assert.deepEqual(plain(`tcp ${REMOTE_IP}:40000 -> ${POD_IP}:8080 in eth0`), { disposition: 'drop', chain: 'ISTIO_TPROXY' });
        assert.deepEqual(plain(`tcp [${REMOTE_IP6}]:40000 -> [${POD_IP6}]:8080 in eth0`), { disposition: 'drop', chain: 'ISTIO_TPROXY' });
      });
    } finally {
      await net.close();
    }
  });
}
