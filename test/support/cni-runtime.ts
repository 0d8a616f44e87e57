/**
 * A container runtime in miniature, as CNI's own convention has it (environment plus stdin): a
 * node namespace holding a bridge, and pod sandboxes wired to it by Debian's reference `bridge`
 * and `host-local` plugins, followed by podtables' plugin in the same chain.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../src/kernel/exec';
import { createNetns, deleteNetns, uniqueName } from '../../src/kernel/netns';
import { installedPlugin } from './cli';

export const CNI_BIN = '/usr/lib/cni';
export const SUBNET = '10.88.0.0/24';

export interface PluginCall {
  code: number;
  stdout: string;
  stderr: string;
  json?: any;
}

/** The node: a namespace with the bridge; pods are namespaces attached to it. */
export class CniNode {
  readonly node = uniqueName('ptcn');
  readonly pods = new Map<string, { ns: string; id: string; ip: string; result: unknown }>();
  private dataDir = mkdtempSync(join(tmpdir(), 'pt-ipam-'));
  readonly netName = 'ptnet';

  async up(): Promise<void> {
    await createNetns(this.node);
  }

  /** The bridge plugin's configuration (what containerd passes for the first plugin of the list). */
  bridgeConf(): Record<string, unknown> {
    return {
      cniVersion: '1.0.0', name: this.netName, type: 'bridge', bridge: 'ptbr0', isGateway: true, ipMasq: false,
      ipam: { type: 'host-local', subnet: SUBNET, dataDir: this.dataDir },
    };
  }

  /** Run one plugin binary as the runtime does; `inNode` runs it inside the node namespace. */
  async call(binary: string, argv: string[], command: string, ns: string, id: string, conf: unknown, extraArgs = '', inNode = false): Promise<PluginCall> {
    const env = {
      PATH: process.env.PATH,
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: ns ? `/run/netns/${ns}` : '',
      CNI_IFNAME: 'eth0',
      CNI_PATH: CNI_BIN,
      CNI_ARGS: `IgnoreUnknown=1${extraArgs ? ';' + extraArgs : ''}`,
    };
    const cmd = inNode ? 'ip' : binary;
    const args = inNode ? ['netns', 'exec', this.node, binary, ...argv] : argv;
    const r: RunResult = await run(cmd, args, { input: JSON.stringify(conf), env, timeoutMs: 60_000 });
    let json: any;
    try {
      json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
    } catch {
      json = undefined;
    }
    return { ...r, json };
  }

  /** Create a sandbox and run `bridge` (with `host-local`) for it; returns its address. */
  async addSandbox(name: string): Promise<{ ns: string; id: string; ip: string; result: any; bridgeMs: number }> {
    const ns = uniqueName('ptcp');
    await createNetns(ns);
    const id = `ctr-${name}-${ns}`;
    const t0 = process.hrtime.bigint();
    const r = await this.call(join(CNI_BIN, 'bridge'), [], 'ADD', ns, id, this.bridgeConf(), '', true);
    const bridgeMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.code !== 0) throw new Error(`bridge ADD failed: ${r.stdout} ${r.stderr}`);
    const ip = String(r.json.ips[0].address).split('/')[0];
    const p = { ns, id, ip, result: r.json };
    this.pods.set(name, p);
    return { ...p, bridgeMs };
  }

  /** Run podtables' plugin, as installed on a node, for a sandbox, chained after bridge (prevResult = bridge's result). */
  async podtables(command: string, name: string, plugin: Record<string, unknown>, k8s: { namespace: string; pod: string }): Promise<PluginCall> {
    const p = this.pods.get(name)!;
    const conf = { cniVersion: '1.0.0', name: this.netName, ...plugin, ...(command === 'ADD' || command === 'CHECK' ? { prevResult: p.result } : {}) };
    return this.call(await installedPlugin(), [], command, p.ns, p.id, conf, `K8S_POD_NAMESPACE=${k8s.namespace};K8S_POD_NAME=${k8s.pod};K8S_POD_INFRA_CONTAINER_ID=${p.id}`);
  }

  /** Tear down: DEL through bridge for every sandbox, then delete all namespaces. */
  async close(): Promise<void> {
    for (const p of this.pods.values()) {
      await this.call(join(CNI_BIN, 'bridge'), [], 'DEL', p.ns, p.id, this.bridgeConf(), '', true).catch(() => undefined);
      await deleteNetns(p.ns);
    }
    await deleteNetns(this.node);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
