/**
 * The CNI plugin in a real chain: Debian's bridge + host-local plugins wire pod sandboxes to a node
 * bridge, then podtables' plugin runs with their result, exactly as containerd would call it; the
 * pod lookup goes to a local HTTPS stand-in for the API server. Real TCP then shows where
 * connections land.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needKernel } from '../support/kernel';
import { CniNode } from '../support/cni-runtime';
import { pod, startFakeKube, type FakeKube } from '../support/fake-kube';
import { PodNet } from '../support/pod-net';
import { inNetnsOk } from '../../src/kernel/netns';
import { linkerdRuleset, validateLinkerdFlags } from '../../src/mesh/linkerd';
import { saveRuleset } from '../../src/syntax/save';
import { parseRestore } from '../../src/syntax/restore';

const APP_UID = 1000;
const PROXY_UID = 2102;

const plugin = (kubeconfig: string, mode: 'legacy' | 'nft', extra: Record<string, unknown> = {}) => ({
  type: 'linkerd-cni',
  log_level: 'debug',
  kubernetes: { kubeconfig },
  linkerd: {
    'incoming-proxy-port': 4143, 'outgoing-proxy-port': 4140, 'proxy-uid': PROXY_UID,
    'inbound-ports-to-ignore': ['4190', '4191', '4567', '4568'], 'outbound-ports-to-ignore': ['4567', '4568'],
    'iptables-mode': mode, ...extra,
  },
});

const natOf = async (ns: string, mode: string) => (await inNetnsOk(ns, `iptables-${mode}-save`, ['-t', 'nat'])).split('\n').filter((l) => !l.startsWith('#')).join('\n');
const canonical = (text: string) => saveRuleset(parseRestore(text, { family: 'ipv4' }).ruleset);
const expected = (flags: Parameters<typeof validateLinkerdFlags>[0]) => saveRuleset(linkerdRuleset(validateLinkerdFlags(flags).options!, 'ipv4'));
const DEFAULT_FLAGS = {
  incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: String(PROXY_UID),
  inboundPortsToIgnore: ['4190', '4191', '4567', '4568'], outboundPortsToIgnore: ['4567', '4568'],
};

async function withCluster(t: { skip(m: string): void }, fn: (c: CniNode, kube: FakeKube, apps: PodNet) => Promise<void>) {
  const c = new CniNode();
  const kube = await startFakeKube();
  const apps = new PodNet();
  try {
    await c.up();
    await fn(c, kube, apps);
  } finally {
    await apps.close();
    await c.close();
    await kube.close();
  }
}

for (const mode of ['legacy', 'nft'] as const) {
  test(`cni ${mode}: ADD in a bridge chain intercepts the pod's traffic, a retried ADD changes nothing, DEL removes exactly our rules`, async (t) => {
    if (!needKernel(t)) return;
    await withCluster(t, async (c, kube, apps) => {
      kube.objects.set('/api/v1/namespaces/shop/pods/web', pod('shop', 'web', { containers: ['app', 'linkerd-proxy'] }));
      kube.objects.set('/api/v1/namespaces/shop', { kind: 'Namespace', metadata: { name: 'shop', annotations: {} } });
      kube.objects.set('/api/v1/namespaces/shop/pods/client', pod('shop', 'client', { containers: ['curl'] }));
      const web = await c.addSandbox('web');
      const client = await c.addSandbox('client');
      // a rule of the user's own, which DEL must keep
      await inNetnsOk(web.ns, `iptables-${mode}`, ['-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.1/32', '-j', 'RETURN']);

      const [asked0, conns0] = [kube.requests.length, kube.connections()];
      const add = await c.podtables('ADD', 'web', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'web' });
      assert.equal(add.code, 0, add.stdout + add.stderr);
      assert.deepEqual(kube.requests.slice(asked0), ['/api/v1/namespaces/shop/pods/web', '/api/v1/namespaces/shop'], 'the pod, then its namespace');
      assert.equal(kube.connections() - conns0, 1, 'both asked for on one connection');
      assert.deepEqual(add.json, { ...web.result, cniVersion: '1.0.0' }, 'prevResult passes through unchanged');
      const nat = await natOf(web.ns, mode);
      const ours = canonical(nat).split('\n').filter((l) => /PROXY_INIT/.test(l)).join('\n');
      const want = expected(DEFAULT_FLAGS).split('\n').filter((l) => /PROXY_INIT/.test(l)).join('\n');
      assert.equal(ours, want, 'the rules proxy-init would install for the same settings');

      const asked = kube.requests.length;
      const conns = kube.connections();
      const skipped = await c.podtables('ADD', 'client', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'client' });
      assert.equal(skipped.code, 0, skipped.stdout);
      // the namespace is asked for with the pod, before the pod is known to be meshed: one round trip
      assert.deepEqual(kube.requests.slice(asked).slice(0, 1), ['/api/v1/namespaces/shop/pods/client'], 'the pod is asked for first');
      assert.equal(kube.connections() - conns, 1, 'one connection per ADD');
      // the restore started while the pod was looked up is given nothing: no table is even created
      assert.doesNotMatch(await inNetnsOk(client.ns, `iptables-${mode}-save`, []), /^\*nat$/m, 'a pod without linkerd-proxy is left alone');
      assert.doesNotMatch(await natOf(client.ns, mode), /PROXY_INIT/);

      // real TCP: app as uid 1000 on 8080 and 4191, the "proxy" as uid 2102 on 4143 and 4140
      await apps.server(web.ns, 'app', [8080, 4191], APP_UID);
      await apps.server(web.ns, 'proxy', [4143, 4140], PROXY_UID);
      await apps.server(client.ns, 'remote', [80, 9000]);
      const inbound = await apps.connect(client.ns, web.ip, 8080, 'in');
      assert.deepEqual([inbound.reply.server, inbound.reply.port], ['proxy', 4143], 'inbound to 8080 reaches the proxy');
      const skip = await apps.connect(client.ns, web.ip, 4191, 'admin');
      assert.deepEqual([skip.reply.server, skip.reply.port], ['app', 4191], 'an ignored inbound port reaches the app');
      const out = await apps.connect(web.ns, client.ip, 80, 'out', { uid: APP_UID });
      assert.deepEqual([out.reply.server, out.reply.port], ['proxy', 4140], "the app's outbound goes to the proxy");
      const own = await apps.connect(web.ns, client.ip, 9000, 'own', { uid: PROXY_UID });
      assert.deepEqual([own.reply.server, own.reply.port], ['remote', 9000], "the proxy's own connection leaves the pod");

      const again = await c.podtables('ADD', 'web', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'web' });
      assert.equal(again.code, 0);
      // chain counters move with the test traffic (legacy prints them): compare the rules
      assert.equal(canonical(await natOf(web.ns, mode)), canonical(nat), 'a retried ADD leaves the same table');

      const chk = await c.podtables('CHECK', 'web', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'web' });
      assert.equal(chk.code, 0, chk.stdout);
      await inNetnsOk(web.ns, `iptables-${mode}`, ['-t', 'nat', '-D', 'PROXY_INIT_OUTPUT', '1']);
      const bad = await c.podtables('CHECK', 'web', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'web' });
      assert.equal(bad.code, 1);
      assert.equal(bad.json.code, 100, 'CHECK reports the missing rule');
      assert.match(bad.json.details, /PROXY_INIT_OUTPUT/);

      const del = await c.podtables('DEL', 'web', plugin(kube.kubeconfig, mode), { namespace: 'shop', pod: 'web' });
      assert.equal(del.code, 0, del.stdout);
      const after = await natOf(web.ns, mode);
      assert.doesNotMatch(after, /PROXY_INIT/);
      assert.match(after, /-A OUTPUT -d 192\.0\.2\.1\/32 -j RETURN/, "the user's own rule stays");
      const back = await apps.connect(client.ns, web.ip, 8080, 'in2');
      assert.deepEqual([back.reply.server, back.reply.port], ['app', 8080], 'without our rules, 8080 reaches the app');
    });
  });
}

test('cni: pods with linkerd-init are skipped, annotations override ports, subnets and uid, native sidecars count', async (t) => {
  if (!needKernel(t)) return;
  await withCluster(t, async (c, kube) => {
    kube.objects.set('/api/v1/namespaces/a/pods/init', pod('a', 'init', { containers: ['app', 'linkerd-proxy'], init: [{ name: 'linkerd-init' }] }));
    kube.objects.set('/api/v1/namespaces/a/pods/ann', pod('a', 'ann', {
      containers: ['app'], init: [{ name: 'linkerd-proxy', restartPolicy: 'Always' }],
      annotations: { 'config.linkerd.io/skip-inbound-ports': '9999,7000-7010', 'config.linkerd.io/skip-subnets': '10.50.0.0/16' },
    }));
    kube.objects.set('/api/v1/namespaces/a', { kind: 'Namespace', metadata: { name: 'a', annotations: { 'config.linkerd.io/skip-outbound-ports': '25', 'config.linkerd.io/proxy-uid': '3000' } } });
    const init = await c.addSandbox('init');
    const ann = await c.addSandbox('ann');
    const r1 = await c.podtables('ADD', 'init', plugin(kube.kubeconfig, 'legacy'), { namespace: 'a', pod: 'init' });
    assert.equal(r1.code, 0);
    assert.doesNotMatch(await natOf(init.ns, 'legacy'), /PROXY_INIT/);
    // a kubeconfig as kubectl writes it (YAML) works as well as the installer's JSON
    const r2 = await c.podtables('ADD', 'ann', plugin(kube.yamlKubeconfig, 'legacy'), { namespace: 'a', pod: 'ann' });
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    const want = expected({ ...DEFAULT_FLAGS, proxyUid: '3000', inboundPortsToIgnore: [...DEFAULT_FLAGS.inboundPortsToIgnore, '9999', '7000-7010'], outboundPortsToIgnore: ['25'], subnetsToIgnore: ['10.50.0.0/16'] });
    const ours = (text: string) => text.split('\n').filter((l) => /PROXY_INIT/.test(l)).join('\n');
    assert.equal(ours(canonical(await natOf(ann.ns, 'legacy'))), ours(want));
    // behind a proxy that serves one request per connection, the namespace's settings still apply
    kube.oneRequestPerConnection = true;
    const conns = kube.connections();
    const ann2 = await c.addSandbox('ann2');
    const r3 = await c.podtables('ADD', 'ann2', plugin(kube.kubeconfig, 'legacy'), { namespace: 'a', pod: 'ann' });
    assert.equal(r3.code, 0, r3.stdout + r3.stderr);
    assert.equal(kube.connections() - conns, 2, 'the namespace asked for again on a connection of its own');
    assert.equal(ours(canonical(await natOf(ann2.ns, 'legacy'))), ours(want));
  });
});

test('cni: when the API cannot be reached, ADD fails with "try again later" and writes nothing', async (t) => {
  if (!needKernel(t)) return;
  await withCluster(t, async (c, kube) => {
    const p = await c.addSandbox('web');
    const r = await c.podtables('ADD', 'web', plugin(kube.deadKubeconfig, 'legacy'), { namespace: 'shop', pod: 'web' });
    assert.equal(r.code, 1);
    assert.equal(r.json.code, 11);
    assert.match(r.json.msg, /cannot read pod shop\/web/);
    assert.doesNotMatch(await natOf(p.ns, 'legacy'), /PROXY_INIT/);
    const bad = await c.podtables('ADD', 'web', { type: 'linkerd-cni', kubernetes: { kubeconfig: kube.kubeconfig }, linkerd: { 'proxy-uid': 'x' } }, { namespace: 'shop', pod: 'web' });
    assert.equal(bad.json.code, 7);
    assert.match(bad.json.details, /linkerd\.proxy-uid/, 'a bad key is named');
  });
});

test('cni: DEL succeeds when the sandbox is already gone; VERSION lists the spec versions', async (t) => {
  if (!needKernel(t)) return;
  await withCluster(t, async (c, kube) => {
    const p = await c.addSandbox('gone');
    await inNetnsOk(c.node, 'true', []);
    const { deleteNetns } = await import('../../src/kernel/netns');
    await deleteNetns(p.ns);
    const r = await c.podtables('DEL', 'gone', plugin(kube.kubeconfig, 'legacy'), { namespace: 'x', pod: 'gone' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const v = await c.call(await (await import('../support/cli')).installedPlugin(), [], 'VERSION', '', 'x', {});
    assert.ok(v.json.supportedVersions.includes('1.0.0'));
  });
});

test('validate: succeeds in a pod whose rules are in place, exits 95 when the CNI rules are missing', async (t) => {
  if (!needKernel(t)) return;
  await withCluster(t, async (c, kube) => {
    kube.objects.set('/api/v1/namespaces/shop/pods/web', pod('shop', 'web', { containers: ['app', 'linkerd-proxy'] }));
    kube.objects.set('/api/v1/namespaces/shop', { kind: 'Namespace', metadata: { name: 'shop' } });
    const web = await c.addSandbox('web');
    const other = await c.addSandbox('other');
    const { run } = await import('../../src/kernel/exec');
    const { cliBundle } = await import('../support/cli');
    // the validator runs as the app would (not the proxy's uid), so that its connection is redirected
    const validate = async () =>
      run('ip', ['netns', 'exec', web.ns, 'setpriv', `--reuid=${APP_UID}`, `--regid=${APP_UID}`, '--clear-groups',
        process.execPath, await cliBundle(), 'validate', '--connect-addr', `${other.ip}:20001`, '--timeout', '3000'], { timeoutMs: 30_000 });
    const before = await validate();
    assert.equal(before.code, 95, before.stderr);
    assert.match(before.stderr, /CNI rules are missing/);
    const add = await c.podtables('ADD', 'web', plugin(kube.kubeconfig, 'legacy'), { namespace: 'shop', pod: 'web' });
    assert.equal(add.code, 0, add.stdout);
    const after = await validate();
    assert.equal(after.code, 0, after.stderr);
    assert.match(after.stdout, /redirect in place/);
  });
});
