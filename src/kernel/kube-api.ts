/**
 * The few Kubernetes API reads the CNI plugin needs (a Pod, its Namespace, the `kubernetes`
 * Service), over HTTPS with a kubeconfig's server, CA and credentials. A full client library
 * would cost more start-up time than the whole ADD may take.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

/** Where and how to reach the API server. */
export interface KubeEndpoint {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
  /** One kept-alive connection for the few requests of a call: one TLS handshake, not three. */
  agent?: Agent;
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

/** Close kept-alive connections so the process can end at once. */
export function closeKube(ep: KubeEndpoint): void {
  ep.agent?.destroy();
}

/** GET a path of the API and parse the JSON answer; 404 resolves to null. */
export function kubeGet<T>(ep: KubeEndpoint, path: string, timeoutMs = 5000): Promise<T | null> {
  return new Promise((resolve, reject) => {
    const url = new URL(ep.server + path);
    const req = request(
      url,
      {
        method: 'GET',
        ca: ep.ca,
        cert: ep.cert,
        key: ep.key,
        rejectUnauthorized: !ep.insecure,
        // one connection: requests made together take turns on it rather than paying for a second TLS handshake
        agent: (ep.agent ??= new Agent({ keepAlive: true, maxSockets: 1 })),
        headers: { Accept: 'application/json', ...(ep.token ? { Authorization: `Bearer ${ep.token}` } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 404) return resolve(null);
          if (!res.statusCode || res.statusCode >= 300)
            return reject(new KubeError(`GET ${path}: HTTP ${res.statusCode}: ${body.slice(0, 200)}`, (res.statusCode ?? 500) >= 500 || res.statusCode === 429, res.statusCode));
          try {
            resolve(JSON.parse(body) as T);
          } catch {
            reject(new KubeError(`GET ${path}: the answer is not JSON`, false));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof KubeError ? e : new KubeError(`GET ${url.href}: ${e.message}`, true)));
    req.end();
  });
}
