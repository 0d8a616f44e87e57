/**
 * A small cluster in network namespaces for end-to-end tests: a pod, a node that routes and
 * DNATs a ClusterIP back to the pod (kube-proxy style, with the hairpin MASQUERADE kube-proxy adds
 * when an endpoint reaches itself), and a remote host. Processes run as chosen uids through
 * setpriv; everything started here is stopped by pid and every namespace deleted in `close`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createNetns, deleteNetns, inNetns, inNetnsOk, uniqueName } from '../../src/kernel/netns';

export const POD_IP = '10.77.0.2';
export const NODE_POD_SIDE = '10.77.0.1';
export const REMOTE_IP = '10.78.0.2';
/** A second address of the remote host, in a subnet the pod ignores. */
export const IGNORED_SRC = '10.79.0.2';
export const IGNORED_SRC6 = 'fd79::2';
export const CLUSTER_IP = '10.96.0.10';
export const POD_IP6 = 'fd77::2';
export const REMOTE_IP6 = 'fd78::2';

const ACTOR = resolve(import.meta.dirname, 'tcp-actor.mjs');

/** Lines a process printed, parsed as JSON, growing while it runs. */
export interface Proc {
  child: ChildProcess;
  events: Record<string, unknown>[];
  /** Resolve with the first event satisfying `pred` (waiting for it up to `ms`). */
  waitFor(pred: (e: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

function track(child: ChildProcess): Proc {
  const events: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        events.push(JSON.parse(line));
      } catch {
        /* not an event */
      }
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  return {
    child,
    events,
    async waitFor(pred, ms = 10_000) {
      const end = Date.now() + ms;
      for (;;) {
        const e = events.find(pred);
        if (e) return e;
        if (Date.now() > end || child.exitCode !== null) throw new Error(`event not seen; events: ${JSON.stringify(events)} stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

const asUid = (uid: number | undefined) => (uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']);

/** The three namespaces and what runs in them. */
export class PodNet {
  readonly pod = uniqueName('ptp');
  readonly node = uniqueName('ptn');
  readonly remote = uniqueName('ptr');
  private procs: ChildProcess[] = [];

  /** Build the namespaces, links, addresses, routes and the node's Service rules. */
  async up(): Promise<void> {
    for (const ns of [this.pod, this.node, this.remote]) await createNetns(ns);
    const ip = (ns: string, ...a: string[]) => inNetnsOk(ns, 'ip', a);
    await ip(this.pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vp', 'netns', this.node);
    await ip(this.remote, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'vr', 'netns', this.node);
    const addrs: [string, string, string[]][] = [
      [this.pod, 'eth0', [`${POD_IP}/24`, `${POD_IP6}/64`]],
      [this.node, 'vp', [`${NODE_POD_SIDE}/24`, 'fd77::1/64']],
      [this.node, 'vr', ['10.78.0.1/24', 'fd78::1/64']],
      [this.remote, 'eth0', [`${REMOTE_IP}/24`, `${IGNORED_SRC}/24`, `${REMOTE_IP6}/64`, `${IGNORED_SRC6}/64`]],
    ];
    for (const [ns, dev, list] of addrs) {
      for (const a of list) await ip(ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
      await ip(ns, 'link', 'set', dev, 'up');
    }
    await ip(this.pod, 'route', 'add', 'default', 'via', NODE_POD_SIDE);
    await ip(this.pod, '-6', 'route', 'add', 'default', 'via', 'fd77::1');
    await ip(this.remote, 'route', 'add', 'default', 'via', '10.78.0.1');
    await ip(this.remote, '-6', 'route', 'add', 'default', 'via', 'fd78::1');
    await ip(this.node, 'route', 'add', '10.79.0.0/24', 'via', REMOTE_IP);
    await ip(this.node, '-6', 'route', 'add', 'fd79::/64', 'via', REMOTE_IP6);
    await inNetnsOk(this.node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    // the node's kube-proxy: ClusterIP:80 → pod:8080, and masquerade the pod reaching itself so
    // that the reply comes back through the node to be un-DNATed (KUBE-MARK-MASQ's hairpin case)
    await inNetnsOk(this.node, 'iptables-legacy-restore', [], {
      input: [
        '*nat',
        `-A PREROUTING -d ${CLUSTER_IP}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination ${POD_IP}:8080`,
        `-A POSTROUTING -s ${POD_IP}/32 -d ${POD_IP}/32 -j MASQUERADE`,
        'COMMIT',
        '',
      ].join('\n'),
    });
  }

  /**
   * Wait until IPv6 crosses the node both ways: a ping from the remote to the pod's IPv6 address
   * resolves every neighbour on the path (remote → node → pod and back). Without it the first IPv6
   * connection sometimes failed with EHOSTUNREACH after 3 s of neighbour solicitation, just after
   * the links came up; a failed resolution is tried afresh by the next ping.
   */
  async ipv6Ready(timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = await inNetns(this.remote, 'ping', ['-6', '-c', '1', '-W', '1', '-I', REMOTE_IP6, POD_IP6], { timeoutMs: 5_000 });
      if (r.code === 0) return;
      if (Date.now() > end) throw new Error(`IPv6 from the remote to ${POD_IP6} is not up after ${timeoutMs} ms: ${r.stdout}${r.stderr}`);
    }
  }

  /** Start a process in a namespace, as `uid` when given. */
  start(ns: string, argv: string[], uid?: number): Proc {
    const child = spawn('ip', ['netns', 'exec', ns, ...asUid(uid), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(child);
    return track(child);
  }

  /** Start a tcp-actor server called `name` on `ports`, as `uid`; resolves once it listens. */
  async server(ns: string, name: string, ports: number[], uid?: number): Promise<Proc> {
    const p = this.start(ns, [process.execPath, ACTOR, 'server', name, ...ports.map(String)], uid);
    await p.waitFor((e) => e.ready === name);
    return p;
  }

  /**
   * Start a tcp-actor server whose listeners are transparent, so that TPROXY may divert to them.
   * As `uid` it keeps CAP_NET_ADMIN as an ambient capability: without it setsockopt(IPV6_TRANSPARENT)
   * fails with EPERM (Istio grants its proxy NET_ADMIN in TPROXY mode for the same reason).
   */
  async transparentServer(ns: string, name: string, ports: number[], uid?: number): Promise<Proc> {
    const caps = uid === undefined ? [] : [...asUid(uid), '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];
    const p = this.start(ns, [...caps, process.execPath, ACTOR, 'tserver', name, ...ports.map(String)]);
    await p.waitFor((e) => e.ready === name && e.transparent === true);
    return p;
  }

  /** Connect from `ns` as `uid` to host:port, send `token`; the client's view of the exchange. */
  async connect(ns: string, host: string, port: number, token: string, opts: { uid?: number; bind?: string } = {}): Promise<{ local: string; reply: Record<string, unknown> }> {
    const p = this.start(ns, [process.execPath, ACTOR, 'client', host, String(port), token, ...(opts.bind ? [opts.bind] : [])], opts.uid);
    const e = await p.waitFor((x) => 'local' in x || 'error' in x);
    if ('error' in e) throw new Error(`connect ${host}:${port} from ${ns}: ${e.error}`);
    return e as { local: string; reply: Record<string, unknown> };
  }

  /** Stop every process started here (by pid) and delete the namespaces. */
  async close(): Promise<void> {
    for (const c of this.procs) if (c.exitCode === null && c.pid) c.kill('SIGKILL');
    await Promise.all(this.procs.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('close', r)) : undefined)));
    for (const ns of [this.pod, this.node, this.remote]) await deleteNetns(ns);
  }
}
