import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { distEntry, installedPlugin } from '../support/cli';
import { withOurPlugin, withoutOurPlugin } from '../../src/kernel/cni-install';

const OURS = { type: 'linkerd-cni', name: 'linkerd-cni', linkerd: { 'proxy-uid': 2102 } };

test('a single-plugin .conf becomes a list with ours appended; a list gets ours once', () => {
  const single = withOurPlugin(JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', type: 'bridge', bridge: 'cni0' }), OURS)!;
  assert.deepEqual(JSON.parse(single.text), { cniVersion: '1.0.0', name: 'k8s', plugins: [{ cniVersion: '1.0.0', type: 'bridge', bridge: 'cni0' }, OURS] });
  const list = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s', plugins: [{ type: 'calico' }, { type: 'portmap' }] });
  const once = withOurPlugin(list, OURS)!;
  assert.deepEqual(JSON.parse(once.text).plugins.map((p: { type: string }) => p.type), ['calico', 'portmap', 'linkerd-cni']);
  assert.equal(withOurPlugin(once.text, OURS), null, 'already there');
  assert.deepEqual(JSON.parse(withoutOurPlugin(once.text, 'linkerd-cni')!).plugins, [{ type: 'calico' }, { type: 'portmap' }]);
});

const until = async (what: string, fn: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

test('cni install appends to every config, re-appends when another plugin rewrites its list, and removes exactly its own on SIGTERM', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pt-cni-'));
  const bin = join(root, 'bin'), net = join(root, 'net');
  mkdirSync(bin);
  mkdirSync(net);
  const calico = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'calico' }, { type: 'portmap' }] }, null, 2);
  writeFileSync(join(net, '10-calico.conflist'), calico);
  writeFileSync(join(net, '20-bridge.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'br', type: 'bridge' }));
  writeFileSync(join(net, 'notes.txt'), 'not a config');
  const cfg = join(root, 'plugin.json');
  writeFileSync(cfg, JSON.stringify({ ...OURS, kubernetes: { kubeconfig: '__KUBECONFIG_FILEPATH__' } }));
  const child = spawn(process.execPath, [distEntry(), 'cni', 'install', '--cni-bin-dir', bin, '--cni-net-dir', net, '--host-cni-net-dir', '/etc/cni/net.d', '--plugin-config', cfg, '--no-kubeconfig'], { stdio: 'ignore' });
  const types = (f: string) => (existsSync(join(net, f)) ? JSON.parse(readFileSync(join(net, f), 'utf8')).plugins.map((p: { type: string }) => p.type) : []);
  try {
    await until('the lists to hold linkerd-cni', () => types('10-calico.conflist').includes('linkerd-cni') && types('20-bridge.conflist').includes('linkerd-cni'));
    // the list is written before the .conf goes, so that the runtime always finds a configuration
    await until('the single-plugin .conf to be replaced by its list', () => !existsSync(join(net, '20-bridge.conf')));
    for (const f of ['linkerd-cni', 'linkerd-cni.d/podtables.cjs', 'linkerd-cni.d/cli/cni-plugin.cjs', 'linkerd-cni.d/cli/cni-plugin.cjs.cache', 'linkerd-cni.d/node'])
      assert.ok(existsSync(join(bin, f)), `${f} is installed`);
    const entry = JSON.parse(readFileSync(join(net, '10-calico.conflist'), 'utf8')).plugins[2];
    assert.equal(entry.kubernetes.kubeconfig, '/etc/cni/net.d/ZZZ-linkerd-cni-kubeconfig', 'the kubeconfig placeholder is filled');
    // calico's installer writes its list again, without us
    writeFileSync(join(net, '10-calico.conflist'), calico);
    await until('linkerd-cni to be appended again', () => types('10-calico.conflist').includes('linkerd-cni'));
    assert.deepEqual(types('10-calico.conflist'), ['calico', 'portmap', 'linkerd-cni']);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('close', r));
  }
  assert.deepEqual(types('10-calico.conflist'), ['calico', 'portmap']);
  assert.deepEqual(types('20-bridge.conflist'), ['bridge']);
  assert.ok(!existsSync(join(bin, 'linkerd-cni')), 'the plugin is removed');
  assert.equal(readFileSync(join(net, 'notes.txt'), 'utf8'), 'not a config', 'other files are untouched');
  rmSync(root, { recursive: true, force: true });
});

test('the kubeconfig the installer writes is read back by the plugin: server, CA and token', async () => {
  const { serviceAccountKubeconfig } = await import('../../src/kernel/cni-install');
  const { loadKubeconfig } = await import('../../src/kernel/kube-api');
  const dir = mkdtempSync(join(tmpdir(), 'pt-kc-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, serviceAccountKubeconfig('fd00::1', '6443', Buffer.from('CA PEM').toString('base64'), 'tok'));
  const ep = await loadKubeconfig(path);
  assert.equal(ep.server, 'https://[fd00::1]:6443');
  assert.equal(ep.ca?.toString(), 'CA PEM');
  assert.equal(ep.token, 'tok');
  rmSync(dir, { recursive: true, force: true });
});

test('the plugin as installed (launcher, entry, bundle, code cache, node) answers the runtime by itself', async () => {
  const { run } = await import('../../src/kernel/exec');
  const launcher = await installedPlugin();
  const v = await run(launcher, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' } });
  assert.equal(v.code, 0, v.stderr);
  assert.ok(JSON.parse(v.stdout).supportedVersions.includes('1.0.0'));
  const bad = await run(launcher, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'ADD' }, input: '{"cniVersion":"1.0.0"}' });
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.stdout).code, 7, 'a configuration without name and type is invalid');
});

test('the plugin reads its whole configuration from stdin, written late and in pieces, larger than one read', async () => {
  const { spawn } = await import('node:child_process');
  const src = "import { readStdin } from './src/cli/cni-command'; readStdin().then((s) => process.stdout.write(String(s.length) + ' ' + s.slice(-8)));";
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const big = 'x'.repeat(200_000);
  await new Promise((r) => setTimeout(r, 300));
  child.stdin.write('{"a":"');
  await new Promise((r) => setTimeout(r, 100));
  child.stdin.end(big + '"}-the-end');
  await new Promise((r) => child.once('close', r));
  assert.equal(out, `${6 + big.length + 10} -the-end`);
});
