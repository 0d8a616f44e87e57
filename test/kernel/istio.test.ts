/**
 * `podtables init istio` on the real kernel: the tables it leaves equal the generator's (both
 * backends, both families), it is idempotent, `clean` restores the namespace byte for byte, and
 * real TCP lands where Istio's sidecar rules send it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iptables, needKernel, save, withNetns, restore, type Backend } from '../support/kernel';
import { podtables } from '../support/cli';
import { PodNet, POD_IP, REMOTE_IP } from '../support/pod-net';
import { inNetnsOk } from '../../src/kernel/netns';
import { ISTIO_DEFAULTS, istioRules } from '../../src/mesh/istio';
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
    const clean = await podtables(['clean', 'istio', ...flags]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(await inNetnsOk(ns, 'ip', ['-4', 'rule', 'show']), /lookup 133/);
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

test('istio REDIRECT with real TCP: inbound to the proxy, outbound to the proxy, the proxy and excluded ports straight through', async (t) => {
  if (!needKernel(t)) return;
  const net = new PodNet();
  try {
    await net.up();
    const init = await podtables(['init', 'istio', '--netns', net.pod, '--iptables-mode', 'legacy', '-b', '*', '-d', '9090', '-i', '*', '-u', '1337']);
    assert.equal(init.code, 0, init.stderr);
    await net.server(net.pod, 'app', [8080, 9090], 1000);
    await net.server(net.pod, 'envoy', [15006, 15001], 1337);
    await net.server(net.remote, 'remote', [80]);
    const inbound = await net.connect(net.remote, POD_IP, 8080, 'in');
    assert.deepEqual([inbound.reply.server, inbound.reply.port], ['envoy', 15006]);
    const excluded = await net.connect(net.remote, POD_IP, 9090, 'ex');
    assert.deepEqual([excluded.reply.server, excluded.reply.port], ['app', 9090]);
    const out = await net.connect(net.pod, REMOTE_IP, 80, 'out', { uid: 1000 });
    assert.deepEqual([out.reply.server, out.reply.port], ['envoy', 15001]);
    const own = await net.connect(net.pod, REMOTE_IP, 80, 'own', { uid: 1337 });
    assert.deepEqual([own.reply.server, own.reply.port], ['remote', 80]);
    const self = await net.connect(net.pod, '127.0.0.1', 8080, 'self', { uid: 1000 });
    assert.deepEqual([self.reply.server, self.reply.port], ['app', 8080], 'localhost is never captured');
  } finally {
    await net.close();
  }
});
