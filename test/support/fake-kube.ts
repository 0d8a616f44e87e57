/**
 * A stand-in for the Kubernetes API server on loopback: HTTPS with a throwaway CA, answering GETs
 * of Pods, Namespaces and Services in the API's own JSON shape from a table the test fills.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FakeKube {
  /** path → object served (e.g. `/api/v1/namespaces/default/pods/web`). */
  objects: Map<string, unknown>;
  /** Paths requested, in order. */
  requests: string[];
  /** TLS connections accepted so far. */
  connections(): number;
  /** Answer every request with `Connection: close`, as some proxies do: pipelined requests after the first are dropped. */
  oneRequestPerConnection: boolean;
  kubeconfig: string;
  /** The same in YAML, as kubectl writes kubeconfigs. */
  yamlKubeconfig: string;
  /** A kubeconfig naming a port where nothing listens. */
  deadKubeconfig: string;
  close(): Promise<void>;
}

/** A Pod object with the given containers, init containers and annotations. */
export function pod(ns: string, name: string, o: { containers: string[]; init?: { name: string; restartPolicy?: string }[]; annotations?: Record<string, string>; labels?: Record<string, string> }) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, annotations: o.annotations ?? {}, labels: o.labels ?? {} },
    spec: { containers: o.containers.map((n) => ({ name: n, image: 'example' })), initContainers: o.init ?? [] },
  };
}

/** A kubeconfig as the installer writes it (JSON), or in YAML as kubectl writes them. */
function kubeconfig(port: number, ca: string, token: string, yaml = false): string {
  if (!yaml)
    return JSON.stringify({
      apiVersion: 'v1', kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': Buffer.from(ca).toString('base64') } }],
      users: [{ name: 'cni', user: { token } }],
      contexts: [{ name: 'linkerd-cni-context', context: { cluster: 'fake', user: 'cni' } }],
      'current-context': 'linkerd-cni-context',
    });
  return [
    'apiVersion: v1', 'kind: Config', 'clusters:', '- name: fake', '  cluster:', `    server: https://127.0.0.1:${port}`,
    `    certificate-authority-data: ${Buffer.from(ca).toString('base64')}`, 'users:', '- name: cni', '  user:', `    token: ${token}`,
    'contexts:', '- name: linkerd-cni-context', '  context:', '    cluster: fake', '    user: cni', 'current-context: linkerd-cni-context', '',
  ].join('\n');
}

/** Start the fake API server; requests without the token get 401. */
export async function startFakeKube(): Promise<FakeKube> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-kube-'));
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=podtables-test-ca']);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  o(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.crt', '-days', '1', '-extfile', 'ext.cnf']);
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const token = 'podtables-test-token';
  const objects = new Map<string, unknown>();
  const requests: string[] = [];
  const server: Server = createServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.crt')) }, (req, res) => {
    requests.push(req.url ?? '');
    if (fake.oneRequestPerConnection) res.setHeader('connection', 'close');
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 }));
    }
    const obj = objects.get(req.url ?? '');
    if (!obj) {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 }));
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
  });
  let connections = 0;
  server.on('secureConnection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  writeFileSync(join(dir, 'kubeconfig'), kubeconfig(port, ca, token));
  writeFileSync(join(dir, 'kubeconfig.yaml'), kubeconfig(port, ca, token, true));
  // a port that was free a moment ago: bind and close to learn one
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  writeFileSync(join(dir, 'dead-kubeconfig'), kubeconfig(deadPort, ca, token));
  const fake: FakeKube = {
    objects,
    requests,
    oneRequestPerConnection: false,
    connections: () => connections,
    kubeconfig: join(dir, 'kubeconfig'),
    yamlKubeconfig: join(dir, 'kubeconfig.yaml'),
    deadKubeconfig: join(dir, 'dead-kubeconfig'),
    async close() {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fake;
}
