/**
 * The few Kubernetes API reads the CNI plugin needs (a Pod, its Namespace, the `kubernetes`
 * Service), over HTTPS with a kubeconfig's server, CA and credentials. A CNI ADD runs once per
 * pod and the pod waits on it, so this speaks just enough HTTP/1.1 over node:tls itself: GETs
 * sent together on one connection (pipelined; the API server answers them in order) and answers
 * with a length or chunked. node:https would cost a module graph, a request object per call and
 * one round trip per request; a client library, much more.
 */
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** Where and how to reach the API server. */
export interface KubeEndpoint {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
}

/** A failure to reach or read the API, with whether a retry may help. */
export class KubeError extends Error {
  constructor(message: string, public transient: boolean, public status?: number) {
    super(message);
  }
}

const fromData = (data?: string, file?: string): Buffer | undefined =>
  data ? Buffer.from(data, 'base64') : file ? readFileSync(file) : undefined;

/** Read a kubeconfig: the named context (linkerd-cni writes `linkerd-cni-context`), else the current one. */
export async function loadKubeconfig(path: string, preferContext = 'linkerd-cni-context'): Promise<KubeEndpoint> {
  let doc: any;
  try {
    const text = readFileSync(path, 'utf8');
    // the installer writes JSON (which is YAML too); the YAML parser loads only for other files
    try {
      doc = JSON.parse(text);
    } catch {
      // a CommonJS build of yaml arrives as the default export once bundled
      const y = (await import('yaml')) as typeof import('yaml') & { default?: typeof import('yaml') };
      doc = (y.parse ?? y.default!.parse)(text);
    }
  } catch (e) {
    throw new KubeError(`kubeconfig ${path}: ${(e as Error).message}`, false);
  }
  const contexts: any[] = doc?.contexts ?? [];
  const ctx = contexts.find((c) => c.name === preferContext) ?? contexts.find((c) => c.name === doc?.['current-context']) ?? contexts[0];
  if (!ctx) throw new KubeError(`kubeconfig ${path}: no context`, false);
  const cluster = (doc.clusters ?? []).find((c: any) => c.name === ctx.context?.cluster)?.cluster;
  const user = (doc.users ?? []).find((u: any) => u.name === ctx.context?.user)?.user ?? {};
  if (!cluster?.server) throw new KubeError(`kubeconfig ${path}: context ${ctx.name} has no cluster server`, false);
  try {
    return {
      server: String(cluster.server).replace(/\/+$/, ''),
      ca: fromData(cluster['certificate-authority-data'], cluster['certificate-authority']),
      insecure: cluster['insecure-skip-tls-verify'] === true,
      cert: fromData(user['client-certificate-data'], user['client-certificate']),
      key: fromData(user['client-key-data'], user['client-key']),
      token: user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined),
    };
  } catch (e) {
    throw new KubeError(`kubeconfig ${path}: ${(e as Error).message}`, false);
  }
}

/** GET a path of the API and parse the JSON answer; 404 resolves to null. */
export function kubeGet<T>(ep: KubeEndpoint, path: string, timeoutMs = 5000): Promise<T | null> {
  return kubeGetAll<T>(ep, [path], timeoutMs).answers[0];
}

/** Requests in flight on one connection: an answer per path, and when the connection is up. */
export interface KubeGets<T> {
  /** One per path, in order: the parsed JSON, null for 404, or a KubeError. */
  answers: Promise<T | null>[];
  /** Settles once the TCP connection is made (the TLS hello is on its way) or has failed. */
  connected: Promise<void>;
  /** Close the connection; answers still waiting fail. */
  close(): void;
}

/**
 * GET several paths on one connection, the requests written together: the answers come one
 * round trip after the handshake, not one round trip each. Each answer settles on its own;
 * a failure of the connection rejects those still waiting (transient: a retry may help).
 */
export function kubeGetAll<T>(ep: KubeEndpoint, paths: string[], timeoutMs = 5000): KubeGets<T> {
  const base = URL.canParse(ep.server) ? new URL(ep.server) : new URL('invalid:');
  const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(base.port) || (base.protocol === 'http:' ? 80 : 443);
  const prefix = base.pathname.replace(/\/+$/, '');
  const waiting = paths.map((path) => {
    let settle!: { resolve: (v: T | null) => void; reject: (e: KubeError) => void };
    const answer = new Promise<T | null>((resolve, reject) => (settle = { resolve, reject }));
    // a caller may never await an answer it turns out not to need
    answer.catch(() => {});
    return { path, answer, ...settle };
  });
  const answers = waiting.map((w) => w.answer);
  const fail = (message: string, transient = true): void => {
    for (const w of waiting.splice(0)) w.reject(new KubeError(`GET ${w.path}: ${message}`, transient));
  };
  const token = ep.token;
  if (token !== undefined && /[\r\n]/.test(token)) {
    fail('the kubeconfig token holds a line break', false);
    return { answers, connected: Promise.resolve(), close() {} };
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    fail(`the server ${JSON.stringify(ep.server)} is not an https:// or http:// URL`, false);
    return { answers, connected: Promise.resolve(), close() {} };
  }
  const head = (path: string, last: boolean) =>
    `GET ${prefix}${path} HTTP/1.1\r\nHost: ${base.host}\r\nAccept: application/json\r\nUser-Agent: podtables\r\n` +
    `${token !== undefined ? `Authorization: Bearer ${token}\r\n` : ''}${last ? 'Connection: close\r\n' : ''}\r\n`;
  const socket: Socket =
    base.protocol === 'http:'
      ? tcpConnect({ host, port })
      : tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ca: ep.ca, cert: ep.cert, key: ep.key, rejectUnauthorized: !ep.insecure, ALPNProtocols: ['http/1.1'] });
  const connected = new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  // written now, sent once the handshake is done
  socket.write(paths.map((p, i) => head(p, i === paths.length - 1)).join(''));
  const reader = new AnswerReader();
  const drain = (): void => {
    try {
      for (let res = reader.next(); res && waiting.length; res = reader.next()) {
        const w = waiting.shift()!;
        const body = res.body.toString('utf8');
        if (res.status === 404) w.resolve(null);
        else if (res.status < 200 || res.status >= 300)
          w.reject(new KubeError(`GET ${w.path}: HTTP ${res.status}: ${body.slice(0, 200)}`, res.status >= 500 || res.status === 429, res.status));
        else {
          try {
            w.resolve(JSON.parse(body) as T);
          } catch {
            w.reject(new KubeError(`GET ${w.path}: the answer is not JSON`, false));
          }
        }
      }
    } catch (e) {
      return void socket.destroy(e as Error);
    }
    if (!waiting.length) socket.destroy();
  };
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    drain();
  });
  socket.on('end', () => {
    // an answer whose length is the rest of the stream is whole now
    reader.end();
    drain();
  });
  socket.on('error', (e) => fail(`${ep.server}: ${e.message}`));
  socket.on('close', () => fail(`${ep.server}: the connection closed before the answer`));
  return { answers, connected, close: () => socket.destroy() };
}

interface RawAnswer {
  status: number;
  body: Buffer;
}

/** Reads HTTP/1.1 answers off a byte stream, one after another. */
class AnswerReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  /** Add bytes as they arrive. */
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }

  /** The stream ended: an answer without a length is whole now. */
  end(): void {
    this.ended = true;
  }

  /** The next whole answer, taken off the stream, if there is one yet. */
  next(): RawAnswer | undefined {
    const headEnd = this.buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const lines = this.buf.subarray(0, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0].slice(0, 60))}`);
    const status = Number(m[1]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    let at = headEnd + 4;
    // 1xx answers come before the real one and have no body
    if (status >= 100 && status < 200) {
      this.buf = this.buf.subarray(at);
      return this.next();
    }
    let body: Buffer;
    if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = this.buf.indexOf('\r\n', at);
        if (eol < 0) return undefined;
        const size = parseInt(this.buf.subarray(at, eol).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) throw new Error('a chunk without a size');
        if (size === 0) {
          // no trailers are asked for; skip any, up to the blank line
          const done = this.buf.indexOf('\r\n\r\n', eol);
          if (this.buf.subarray(eol, eol + 4).toString('latin1') === '\r\n\r\n') at = eol + 4;
          else if (done < 0) return undefined;
          else at = done + 4;
          break;
        }
        if (this.buf.length < eol + 2 + size + 2) return undefined;
        parts.push(this.buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers.has('content-length')) {
      const len = Number(headers.get('content-length'));
      if (!Number.isInteger(len) || len < 0) throw new Error(`a bad Content-Length: ${headers.get('content-length')}`);
      if (this.buf.length < at + len) return undefined;
      body = this.buf.subarray(at, at + len);
      at += len;
    } else if (status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else {
      // no length: the body runs to the end of the connection
      if (!this.ended) return undefined;
      body = this.buf.subarray(at);
      at = this.buf.length;
    }
    this.buf = this.buf.subarray(at);
    return { status, body };
  }
}
