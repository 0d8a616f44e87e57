/**
 * The plugin's own HTTP/1.1 reads of the Kubernetes API: answers with a length, chunked (split
 * anywhere), without a length, errors by status, pipelined requests answered in order, and TLS
 * against the cluster's CA only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { kubeGet, kubeGetAll, KubeError, type KubeEndpoint } from '../../src/kernel/kube-api';
import { pod, startFakeKube } from '../support/fake-kube';
import { loadKubeconfig } from '../../src/kernel/kube-api';

/** A plain-TCP server that answers each request with the next raw answer, written in pieces of `piece` bytes. */
async function rawServer(answers: string[], piece = Infinity): Promise<{ ep: KubeEndpoint; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const socks = new Set<Socket>();
  const server = createServer((s) => {
    socks.add(s);
    let buf = '';
    s.on('data', async (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        seen.push(buf.slice(0, i));
        buf = buf.slice(i + 4);
        const a = answers.shift();
        if (a === undefined) return void s.end();
        for (let k = 0; k < a.length; k += piece) {
          s.write(a.slice(k, k + piece));
          if (piece !== Infinity) await new Promise((r) => setImmediate(r));
        }
        if (a.includes('Connection: close')) s.end();
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    ep: { server: `http://127.0.0.1:${port}/prefix/`, token: 't0k' },
    seen,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const withLength = (status: string, body: string) => `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const chunked = (body: string, trailer = '') => {
  const b = Buffer.from(body);
  const parts = [b.subarray(0, 3), b.subarray(3, 10), b.subarray(10)].filter((p) => p.length);
  return `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${parts.map((p) => `${p.length.toString(16)};ext=1\r\n${p.toString()}\r\n`).join('')}0\r\n${trailer}\r\n`;
};

test('pipelined GETs are answered in order: length, chunked with extensions and trailers, 404 as null', async () => {
  const a = { kind: 'Pod', metadata: { name: 'web', annotations: { 'é': 'ü' } } };
  const b = { kind: 'Namespace', metadata: { name: 'shop' } };
  for (const piece of [Infinity, 1, 7]) {
    const s = await rawServer([withLength('200 OK', JSON.stringify(a)), chunked(JSON.stringify(b), 'X-Trailer: 1\r\n'), withLength('404 Not Found', '{"kind":"Status"}')], piece);
    try {
      const got = await Promise.all(kubeGetAll(s.ep, ['/api/v1/a', '/api/v1/b', '/api/v1/c']).answers);
      assert.deepEqual(got, [a, b, null], `answers written ${piece} bytes at a time`);
      assert.deepEqual(s.seen.map((h) => h.split('\r\n')[0]), ['GET /prefix/api/v1/a HTTP/1.1', 'GET /prefix/api/v1/b HTTP/1.1', 'GET /prefix/api/v1/c HTTP/1.1']);
      assert.ok(s.seen.every((h) => h.includes('\r\nAuthorization: Bearer t0k')), 'the token goes with every request');
      assert.ok(s.seen[2].includes('\r\nConnection: close'), 'the last request closes the connection');
    } finally {
      await s.close();
    }
  }
});

test('an answer without a length runs to the end of the connection; 1xx answers are skipped', async () => {
  const s = await rawServer(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"x":1}']);
  try {
    assert.deepEqual(await kubeGet(s.ep, '/x'), { x: 1 });
  } finally {
    await s.close();
  }
});

test('HTTP errors name the path and status; 5xx and 429 may be retried, 401 may not', async () => {
  const s = await rawServer([withLength('401 Unauthorized', '{"reason":"Unauthorized"}'), withLength('503 Service Unavailable', 'later'), withLength('200 OK', 'not json')]);
  try {
    const [a, b, c] = kubeGetAll(s.ep, ['/a', '/b', '/c']).answers;
    await assert.rejects(a, (e: KubeError) => e instanceof KubeError && e.status === 401 && !e.transient && /GET \/a: HTTP 401: .*Unauthorized/.test(e.message));
    await assert.rejects(b, (e: KubeError) => e.status === 503 && e.transient);
    await assert.rejects(c, (e: KubeError) => !e.transient && /not JSON/.test(e.message));
  } finally {
    await s.close();
  }
});

test('a connection that fails or closes early fails the answers still waiting, as worth a retry', async () => {
  const s = await rawServer([withLength('200 OK', '{"a":1}')]);
  const dead = (s.ep.server.match(/:(\d+)\//) ?? [])[1];
  try {
    const [a, b] = kubeGetAll(s.ep, ['/a', '/b']).answers;
    assert.deepEqual(await a, { a: 1 });
    await assert.rejects(b, (e: KubeError) => e.transient && /closed before the answer/.test(e.message));
  } finally {
    await s.close();
  }
  await assert.rejects(kubeGet({ server: `http://127.0.0.1:${dead}` }, '/a'), (e: KubeError) => e.transient && /ECONNREFUSED/.test(e.message));
  await assert.rejects(kubeGet({ server: 'http://127.0.0.1:1', token: 'a\r\nX-Evil: 1' }, '/a'), (e: KubeError) => !e.transient && /line break/.test(e.message));
  await assert.rejects(kubeGet({ server: 'ftp://127.0.0.1:1' }, '/a'), (e: KubeError) => !e.transient && /"ftp:\/\/127.0.0.1:1" is not an https:\/\/ or http:\/\/ URL/.test(e.message));
  await assert.rejects(kubeGet({ server: 'not a url' }, '/a'), (e: KubeError) => !e.transient && /"not a url" is not an https/.test(e.message));
});

test('over TLS the server must hold a certificate of the kubeconfig CA for its address', async () => {
  const kube = await startFakeKube();
  try {
    kube.objects.set('/api/v1/namespaces/a/pods/p', pod('a', 'p', { containers: ['x'] }));
    const ep = await loadKubeconfig(kube.kubeconfig);
    assert.equal(((await kubeGet<any>(ep, '/api/v1/namespaces/a/pods/p')) as any).metadata.name, 'p');
    assert.equal(await kubeGet(ep, '/api/v1/namespaces/a/pods/none'), null);
    // the same server reached by another name than its certificate's
    await assert.rejects(kubeGet({ ...ep, server: ep.server.replace('127.0.0.1', 'localhost') }, '/api/v1/namespaces/a/pods/p'), (e: KubeError) => /localhost|altnames|IP/.test(e.message));
    // a CA that did not sign the server's certificate
    const other = await startFakeKube();
    try {
      const wrong = await loadKubeconfig(other.kubeconfig);
      await assert.rejects(kubeGet({ ...ep, ca: wrong.ca }, '/api/v1/namespaces/a/pods/p'), (e: KubeError) => /certificate/i.test(e.message));
      // the token of another cluster is refused by this one
      await assert.rejects(kubeGet({ ...ep, token: 'nope' }, '/api/v1/namespaces/a/pods/p'), (e: KubeError) => e.status === 401);
    } finally {
      await other.close();
    }
  } finally {
    await kube.close();
  }
});
