/**
 * The CNI side of Linkerd's interception: the network configuration the plugin reads (the keys
 * linkerd-cni reads), the pods it acts on, and the pod annotations that override the settings.
 * Pure: the Kubernetes objects come in as plain JSON.
 */
import { _default, array, boolean, config, enum as zEnum, gte, int, looseObject, number, optional, pipe, prefault, record, regex, string, transform, union, unknown, type infer as Infer } from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import type { LinkerdFlags } from './linkerd';

// zod's mini build with English messages only: the plugin starts once per pod, and the full build
// (or every locale) costs more to load than the rest of ADD
config(en());

const port = pipe(
  union([int(), string().check(regex(/^\d+$/, 'must be a port number'))]),
  transform((v: number | string) => String(v)),
);
const portList = _default(array(pipe(union([string(), number()]), transform((v: string | number) => String(v)))), []);

/** The `linkerd` block of the plugin's network configuration. */
export const LinkerdCniSettings = looseObject({
  'incoming-proxy-port': _default(port, '4143'),
  'outgoing-proxy-port': _default(port, '4140'),
  'proxy-uid': _default(int().check(gte(-1)), 2102),
  'proxy-gid': optional(int().check(gte(-1))),
  'ports-to-redirect': portList,
  'inbound-ports-to-ignore': portList,
  'outbound-ports-to-ignore': portList,
  'subnets-to-ignore': _default(array(string()), []),
  simulate: _default(boolean(), false),
  'use-wait-flag': _default(boolean(), false),
  'iptables-mode': _default(zEnum(['legacy', 'nft', 'plain', 'auto', '']), 'legacy'),
  ipv6: _default(boolean(), false),
});

/** The whole network configuration of one chained-plugin call. */
export const CniNetConf = looseObject({
  cniVersion: string(),
  name: string(),
  type: string(),
  prevResult: optional(record(string(), unknown())),
  log_level: _default(string(), 'info'),
  linkerd: prefault(LinkerdCniSettings, {}),
  kubernetes: prefault(looseObject({ kubeconfig: _default(string(), ''), k8s_api_root: optional(string()) }), {}),
});
export type CniNetConf = Infer<typeof CniNetConf>;

/** Parse the configuration; errors name the key (`linkerd.proxy-uid: Expected number`). */
export function parseNetConf(json: unknown): { conf?: CniNetConf; errors: string[] } {
  const r = CniNetConf.safeParse(json);
  if (r.success) return { conf: r.data, errors: [] };
  return { errors: r.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`) };
}

/** The parts of a Pod the plugin reads. */
export interface PodLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: {
    containers?: { name: string }[];
    initContainers?: { name: string; restartPolicy?: string }[];
  };
}

/** Why a pod is skipped, or null when the plugin must configure it. */
export function skipReason(pod: PodLike): string | null {
  const containers = pod.spec?.containers ?? [];
  const inits = pod.spec?.initContainers ?? [];
  const proxy = containers.some((c) => c.name === 'linkerd-proxy') || inits.some((c) => c.name === 'linkerd-proxy' && c.restartPolicy === 'Always');
  if (!proxy) return 'the pod has no linkerd-proxy container';
  if (inits.some((c) => c.name === 'linkerd-init')) return 'the pod has a linkerd-init init container, which sets up its rules';
  return null;
}

/** Annotations that change the settings for one pod (looked up on the pod, then its namespace). */
export const OVERRIDES = {
  skipInbound: 'config.linkerd.io/skip-inbound-ports',
  skipOutbound: 'config.linkerd.io/skip-outbound-ports',
  skipSubnets: 'config.linkerd.io/skip-subnets',
  proxyUid: 'config.linkerd.io/proxy-uid',
  proxyGid: 'config.linkerd.io/proxy-gid',
} as const;

/** The label that marks Linkerd's own control-plane pods. */
export const CONTROL_PLANE_LABEL = 'linkerd.io/control-plane-component';

/**
 * The init flags for one pod: the configuration, then the annotations — extra inbound ports to
 * skip are added, outbound ports and subnets replace the configured ones, uid and gid override —
 * and, for control-plane pods, the API server's ports skipped outbound.
 */
export function flagsForPod(conf: CniNetConf, annotation: (key: string) => string | undefined, apiServerPorts?: string[]): LinkerdFlags {
  const l = conf.linkerd;
  const flags: LinkerdFlags = {
    incomingProxyPort: l['incoming-proxy-port'],
    outgoingProxyPort: l['outgoing-proxy-port'],
    proxyUid: String(l['proxy-uid']),
    proxyGid: l['proxy-gid'] === undefined ? undefined : String(l['proxy-gid']),
    portsToRedirect: l['ports-to-redirect'],
    inboundPortsToIgnore: [...l['inbound-ports-to-ignore']],
    outboundPortsToIgnore: [...l['outbound-ports-to-ignore']],
    subnetsToIgnore: [...l['subnets-to-ignore']],
  };
  const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
  const inbound = annotation(OVERRIDES.skipInbound);
  if (inbound) flags.inboundPortsToIgnore = [...(flags.inboundPortsToIgnore ?? []), ...list(inbound)];
  const outbound = annotation(OVERRIDES.skipOutbound);
  if (outbound) flags.outboundPortsToIgnore = list(outbound);
  const subnets = annotation(OVERRIDES.skipSubnets);
  if (subnets) flags.subnetsToIgnore = list(subnets);
  const uid = annotation(OVERRIDES.proxyUid);
  if (uid) flags.proxyUid = uid.trim();
  const gid = annotation(OVERRIDES.proxyGid);
  if (gid) flags.proxyGid = gid.trim();
  if (apiServerPorts) flags.outboundPortsToIgnore = [...(flags.outboundPortsToIgnore ?? []), ...apiServerPorts];
  return flags;
}

/** The Kubernetes arguments of CNI_ARGS (`K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;…`). */
export function cniArgs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** Ports of the `kubernetes` Service: each port and its numeric target port. */
export function apiServerPorts(svc: { spec?: { ports?: { port: number; targetPort?: number | string }[] } }): string[] {
  const out: string[] = [];
  for (const p of svc.spec?.ports ?? []) {
    out.push(String(p.port));
    if (typeof p.targetPort === 'number') out.push(String(p.targetPort));
  }
  return out;
}
