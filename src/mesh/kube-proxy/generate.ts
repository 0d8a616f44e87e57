/**
 * Services and EndpointSlices to the Ruleset kube-proxy's iptables mode writes for one node and
 * one family. Service ports are emitted sorted by `namespace/name:port` then protocol (kube-proxy
 * walks a Go map, so its own order changes from sync to sync; the rules are the same).
 */
import type { Issue } from '../../model/issue';
import { emptyTable, isBuiltin, type Chain, type Ruleset, type Table, type TableName } from '../../model/ruleset';
import { parseCidr } from '../../model/addr';
import { writeBase, writeCanaries, writeJumps, writeTail } from './base';
import { writeClusterIP, writeInternalMasquerade } from './cluster-ip';
import { ChainSet, nodeOptions, viewOf, type Gen, type NodeOptions } from './context';
import { writeEndpointChains } from './endpoint-chains';
import { writeExternalIPs } from './external-ip';
import { writeFirewallChain, writeLoadBalancerIPs } from './load-balancer';
import { markOf } from './marks';
import { servicePorts, type ServicePort } from './model';
import { writeNodePort } from './node-port';
import type { KubeObjects } from './objects';
import { writeExternalChain, writePolicyChains } from './service-chains';

/** kube-proxy leaves out per-endpoint comments above this many endpoints (largeClusterEndpointsThreshold). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

/** A generated node ruleset, with the service ports it came from. */
export interface Generated {
  ruleset: Ruleset;
  /** Chains in the order kube-proxy declares them, per table (for the restore form). */
  order: Map<TableName, string[]>;
  ports: ServicePort[];
  issues: Issue[];
}

/** Generate the rules for one family. */
export function generate(objs: KubeObjects, options: Partial<NodeOptions> = {}): Generated {
  const opts = nodeOptions(options);
  if (opts.masqueradeBit < 0 || opts.masqueradeBit > 31 || !Number.isInteger(opts.masqueradeBit)) throw new RangeError(`masquerade bit ${opts.masqueradeBit} is not in 0..31`);
  const issues: Issue[] = [];
  const ports = servicePorts(objs, opts.family, opts.hostname, issues);
  const total = ports.reduce((n, p) => n + p.endpoints.length, 0);
  const fam = (s: string) => (s.includes(':') ? 'ipv6' : 'ipv4');
  const podCidr = opts.clusterCidrs.find((c) => fam(c) === opts.family && typeof parseCidr(c, opts.family) !== 'string');
  const g: Gen = {
    opts,
    nat: { family: opts.family, table: 'nat' },
    filter: { family: opts.family, table: 'filter' },
    chains: new ChainSet(),
    mark: markOf(opts.masqueradeBit),
    largeCluster: total > LARGE_CLUSTER_ENDPOINTS,
    podCidr,
    nodeIP: opts.nodeIPs.find((ip) => fam(ip) === opts.family),
  };
  writeBase(g);
  for (const sp of ports) writeServicePort(g, sp);
  writeTail(g);
  if (opts.builtinJumps) writeJumps(g);
  if (opts.canary) writeCanaries(g);
  return { ...toRuleset(g), ports, issues };
}

/** Every rule of one service port, in kube-proxy's order. */
function writeServicePort(g: Gen, sp: ServicePort): void {
  const v = viewOf(sp);
  writeClusterIP(g, v);
  writeExternalIPs(g, v);
  writeLoadBalancerIPs(g, v);
  writeNodePort(g, v);
  writeInternalMasquerade(g, v);
  writeExternalChain(g, v);
  writeFirewallChain(g, v);
  writePolicyChains(g, v);
  writeEndpointChains(g, v);
}

const TABLE_ORDER: TableName[] = ['filter', 'nat', 'mangle'];

function toRuleset(g: Gen): { ruleset: Ruleset; order: Map<TableName, string[]> } {
  const tables: Table[] = [];
  const order = new Map<TableName, string[]>();
  for (const name of TABLE_ORDER) {
    const chains = g.chains.tables.get(name);
    if (!chains) continue;
    const t = emptyTable(name);
    const byName = new Map<string, Chain>(t.chains.map((c) => [c.name, c]));
    for (const [c, rules] of chains) {
      if (isBuiltin(name, c)) byName.get(c)!.rules.push(...rules);
      else t.chains.push({ name: c, rules });
    }
    order.set(name, [...chains.keys()].filter((c) => !isBuiltin(name, c)));
    tables.push(t);
  }
  return { ruleset: { family: g.opts.family, tables }, order };
}
