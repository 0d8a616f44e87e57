/**
 * Services and EndpointSlices to the rules kube-proxy's iptables mode writes for one node and one
 * family, as rule text (see rules.ts and lines.ts; the model is parsed from it on demand). Service
 * ports are emitted sorted by `namespace/name:port` then protocol (kube-proxy walks a Go map, so
 * its own order changes from sync to sync; the rules are the same).
 */
import type { Issue } from '../../model/issue';
import type { Ruleset, TableName } from '../../model/ruleset';
import { parseCidr, type Family } from '../../model/addr';
import { parseRestore } from '../../syntax/restore';
import { writeBase, writeCanaries, writeJumps, writeTail } from './base';
import { writeClusterIP, writeInternalMasquerade } from './cluster-ip';
import { ChainSet, nodeOptions, viewOf, type Gen, type NodeOptions } from './context';
import { ChainNames } from './names';
import { writeEndpointChains } from './endpoint-chains';
import { writeExternalIPs } from './external-ip';
import { writeFirewallChain, writeLoadBalancerIPs } from './load-balancer';
import { markOf } from './marks';
import { renderSave } from './render';
import type { TableText } from './lines';
import { servicePorts, type ServicePort } from './model';
import { writeNodePort } from './node-port';
import type { KubeObjects } from './objects';
import { writeExternalChain, writePolicyChains } from './service-chains';

/** kube-proxy leaves out per-endpoint comments above this many endpoints (largeClusterEndpointsThreshold). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;

/** A generated node ruleset: the rule text per table and chain, with the service ports it came from. */
export interface Generated {
  family: Family;
  /**
   * Per table (filter, nat, mangle), the chains in the order kube-proxy declares them (built-in
   * ones included, where the jumps go), each with its `-A CHAIN …` lines in save form.
   */
  tables: Map<TableName, TableText>;
  /** The names of the chains in `tables`. */
  names: ChainNames;
  ports: ServicePort[];
  issues: Issue[];
}

/** Generate the rules for one family. */
export function generate(objs: KubeObjects, options: Partial<NodeOptions> = {}): Generated {
  const opts = nodeOptions(options);
  if (opts.masqueradeBit < 0 || opts.masqueradeBit > 31 || !Number.isInteger(opts.masqueradeBit)) throw new RangeError(`masquerade bit ${opts.masqueradeBit} is not in 0..31`);
  const issues: Issue[] = [];
  const family = opts.family;
  // About one name per service port and per endpoint of each slice port (KUBE-SVC, KUBE-SEP).
  let expected = 0;
  for (let i = 0; i < objs.services.length; i++) expected += objs.services[i].spec.ports.length;
  for (let i = 0; i < objs.slices.length; i++) expected += (objs.slices[i].endpoints?.length ?? 0) * (objs.slices[i].ports?.length ?? 0);
  const names = new ChainNames(expected);
  const ports = servicePorts(objs, family, opts.hostname, issues, names);
  let total = 0;
  for (let i = 0; i < ports.length; i++) total += ports[i].endpoints.length;
  const fam = (s: string) => (s.includes(':') ? 'ipv6' : 'ipv4');
  const podCidr = opts.clusterCidrs.find((c) => fam(c) === family && typeof parseCidr(c, family) !== 'string');
  const g: Gen = {
    opts,
    family,
    // Measured: a ClusterIP port's nat rules take about 150 bytes, an endpoint's about 240.
    chains: new ChainSet(family, names, (1 << 16) + 200 * ports.length + 300 * total),
    names,
    mark: markOf(opts.masqueradeBit),
    largeCluster: total > LARGE_CLUSTER_ENDPOINTS,
    podCidr,
    nodeIP: opts.nodeIPs.find((ip) => fam(ip) === family),
  };
  writeBase(g);
  for (let i = 0; i < ports.length; i++) writeServicePort(g, ports[i]);
  writeTail(g);
  if (opts.builtinJumps) writeJumps(g);
  if (opts.canary) writeCanaries(g);
  const tables = new Map<TableName, TableText>();
  for (const t of TABLE_ORDER) {
    const chains = g.chains.tables.get(t);
    if (chains) tables.set(t, chains);
  }
  return { family, tables, names, ports, issues };
}

/** Every rule of one service port, in kube-proxy's order. */
function writeServicePort(g: Gen, sp: ServicePort): void {
  const v = viewOf(sp, g.names);
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

/** The tables in the order iptables-save prints a kube-proxy node's (as the model held them). */
const TABLE_ORDER: TableName[] = ['filter', 'nat', 'mangle'];

/** The generated rules as a model Ruleset (parsed from the save text): for tracing and JSON, not for printing. */
export function toRuleset(gen: Generated): Ruleset {
  const { ruleset, issues } = parseRestore(renderSave(gen), { family: gen.family });
  const error = issues.find((i) => i.severity === 'error');
  if (error) throw new Error(`kube-proxy generator: generated text does not parse: line ${error.line}: ${error.message}`);
  // The tables in the order the text has them, so that the model prints back as renderSave does.
  ruleset.tables.sort((a, b) => TABLE_ORDER.indexOf(a.name) - TABLE_ORDER.indexOf(b.name));
  return ruleset;
}
