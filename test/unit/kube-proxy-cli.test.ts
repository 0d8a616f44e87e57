import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'kube-proxy', ...args], { encoding: 'utf8', input, timeout: 60_000 });

const OBJECTS = `apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: default}
spec: {clusterIP: 10.0.91.63, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec: {clusterIP: 10.0.91.64, ports: [{port: 80, protocol: ICMP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: nginx-1, namespace: default, labels: {kubernetes.io/service-name: nginx}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.13]}]
ports: [{port: 80}]
`;

test('writes the rules for the valid objects, names the skipped one with its file and line, and exits 3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kp-cli-'));
  try {
    const file = join(dir, 'objs.yaml');
    writeFileSync(file, OBJECTS);
    const r = run(['--objects', file, '--cluster-cidr', '10.244.0.0/16']);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`${file}:9: Service default/broken: spec\\.ports\\[0\\]\\.protocol: .*skipped`));
    assert.match(r.stdout, /^-A KUBE-SVC-2CMXP7HKUVJN7L6M ! -s 10\.244\.0\.0\/16 -d 10\.0\.91\.63\/32 -p tcp -m comment --comment "default\/nginx cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ$/m);
    assert.match(r.stdout, /^-A KUBE-SEP-RPYTXMYI33B6SF5E -p tcp -m comment --comment "default\/nginx" -m tcp -j DNAT --to-destination 10\.244\.0\.13:80$/m);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('reads standard input, writes the nftables form, and exits 0 when nothing was skipped', () => {
  const r = run(['--objects', '-', '--format', 'nft'], OBJECTS.split('---')[0]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^add table ip kube-proxy/);
  assert.match(r.stdout, /add element ip kube-proxy no-endpoint-services \{ 10\.0\.91\.63 \. tcp \. 80 comment "default\/nginx" : goto reject-chain \}/);
});

test('refuses a bad flag value with exit 2 and a message naming the flag', () => {
  const r = run(['--objects', '-', '--cluster-cidr', '10.0.0.0/33'], '');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--cluster-cidr: '10\.0\.0\.0\/33' is not a CIDR/);
  const f = run(['--objects', '-', '--format', 'json'], '');
  assert.equal(f.status, 2);
  assert.match(f.stderr, /--format: unknown format 'json'/);
});
