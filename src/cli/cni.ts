/**
 * `podtables cni`: a chained CNI plugin (CNI 1.x) that installs Linkerd's interception rules in
 * each new pod sandbox, as linkerd-cni does. The runtime calls it with CNI_* variables and the
 * network configuration on stdin; the answer goes to stdout, logs to stderr.
 */
import { existsSync } from 'node:fs';
import type { Family } from '../model/addr';
import { apiServerPorts, cniArgs, CONTROL_PLANE_LABEL, flagsForPod, parseNetConf, skipReason, type CniNetConf, type PodLike } from '../mesh/linkerd-cni';
import { linkerdPlan, OUTPUT_CHAIN, REDIRECT_CHAIN, validateLinkerdFlags, type LinkerdOptions } from '../mesh/linkerd';
import { applyOwnedChains, releaseRestores, removeOwnedChains, startRestore, verifyOwnedChains, type ApplyTarget } from '../kernel/apply';
import { binaries, detectVariant } from '../kernel/backend';
import { kubeGet, kubeGetAll, KubeError, loadKubeconfig, type KubeEndpoint } from '../kernel/kube-api';

import { SUPPORTED_VERSIONS } from './cni-command';
import { writeOut } from './io';

/** The spec's well-known error codes, and ours (100 and up). */
export const CNI_ERRORS = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  rulesMissing: 100,
  applyFailed: 101,
} as const;

/** What the plugin answers: stdout text and exit code. */
export interface CniAnswer {
  stdout: string;
  code: number;
}

class CniFailure extends Error {
  constructor(public code: number, message: string, public details?: string) {
    super(message);
  }
}

/** Log lines as `time=… level=… msg=… key=value`, which kubelet and containerd keep readable. */
class Log {
  private max: number;
  constructor(level: string, private write: (s: string) => void) {
    this.max = ['error', 'warn', 'info', 'debug'].indexOf(level.toLowerCase());
    if (this.max < 0) this.max = 1;
  }
  at(level: 'error' | 'warn' | 'info' | 'debug', msg: string, fields: Record<string, string | undefined> = {}): void {
    if (['error', 'warn', 'info', 'debug'].indexOf(level) > this.max) return;
    const kv = Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('');
    this.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(`linkerd-cni: ${msg}`)}${kv}\n`);
  }
}

/** Run one plugin call. Never throws: failures become the spec's error JSON. */
export async function runCni(env: NodeJS.ProcessEnv, stdin: string, logWrite: (s: string) => void = (s) => writeOut(2, s)): Promise<CniAnswer> {
  const command = env.CNI_COMMAND ?? '';
  let version = '1.1.0';
  let log = new Log('info', logWrite);
  try {
    if (command === 'VERSION') return { stdout: JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS }) + '\n', code: 0 };
    if (!['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'].includes(command))
      throw new CniFailure(CNI_ERRORS.invalidEnvironment, `CNI_COMMAND "${command}" is not ADD, DEL, CHECK, GC, STATUS or VERSION`);
    let json: unknown;
    try {
      json = JSON.parse(stdin);
    } catch (e) {
      throw new CniFailure(CNI_ERRORS.decodeFailure, 'the network configuration on stdin is not JSON', (e as Error).message);
    }
    const { conf, errors } = parseNetConf(json);
    if (!conf) throw new CniFailure(CNI_ERRORS.invalidConfig, 'invalid network configuration', errors.join('; '));
    version = conf.cniVersion;
    log = new Log(conf.log_level, logWrite);
    if (!SUPPORTED_VERSIONS.includes(conf.cniVersion))
      throw new CniFailure(CNI_ERRORS.incompatibleVersion, `CNI version ${conf.cniVersion} is not supported (${SUPPORTED_VERSIONS.join(', ')})`);
    switch (command) {
      case 'ADD':
        await add(env, conf, log);
        return { stdout: JSON.stringify({ ...(conf.prevResult ?? { interfaces: [], ips: [], dns: {} }), cniVersion: conf.cniVersion }) + '\n', code: 0 };
      case 'DEL':
        await del(env, conf, log);
        return { stdout: '', code: 0 };
      case 'CHECK':
        await check(env, conf, log);
        return { stdout: '', code: 0 };
      case 'STATUS':
        if (conf.kubernetes.kubeconfig && !existsSync(conf.kubernetes.kubeconfig))
          throw new CniFailure(CNI_ERRORS.notAvailable, `kubeconfig ${conf.kubernetes.kubeconfig} does not exist yet`);
        return { stdout: '', code: 0 };
      default:
        // GC: the rules live in each pod's namespace and go with it; nothing is kept elsewhere
        return { stdout: '', code: 0 };
    }
  } catch (e) {
    const f = e instanceof CniFailure ? e : new CniFailure(CNI_ERRORS.ioFailure, (e as Error).message);
    log.at('error', f.message, { details: f.details, command, container: env.CNI_CONTAINERID });
    return { stdout: JSON.stringify({ cniVersion: version, code: f.code, msg: f.message, ...(f.details ? { details: f.details } : {}) }) + '\n', code: 1 };
  }
}

/** The pod's settings, or a reason to leave it alone. */
interface PodSettings {
  options?: LinkerdOptions;
  skip?: string;
}

/**
 * Look the pod up: its object and its namespace's (whose annotations apply where the pod has
 * none), asked for together on one connection, so that a meshed pod waits one round trip after
 * the handshake. `connecting` is called once the connection is made (or there is none to make).
 */
async function podOptions(env: NodeJS.ProcessEnv, conf: CniNetConf, log: Log, connecting: () => void = () => {}): Promise<PodSettings> {
  try {
    const args = cniArgs(env.CNI_ARGS);
    const ns = args.K8S_POD_NAMESPACE;
    const name = args.K8S_POD_NAME;
    if (!ns || !name) return { skip: 'no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS: not a Kubernetes pod' };
    if (!conf.kubernetes.kubeconfig) throw new CniFailure(CNI_ERRORS.invalidConfig, 'kubernetes.kubeconfig is not set in the network configuration');
    let ep: KubeEndpoint;
    try {
      ep = await loadKubeconfig(conf.kubernetes.kubeconfig);
    } catch (e) {
      throw new CniFailure(CNI_ERRORS.invalidConfig, (e as Error).message);
    }
    const gets = kubeGetAll<PodLike>(ep, [`/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`, `/api/v1/namespaces/${encodeURIComponent(ns)}`]);
    gets.connected.then(connecting);
    try {
      return await lookUp(ep, gets.answers, ns, name, conf, log);
    } finally {
      gets.close();
    }
  } finally {
    connecting();
  }
}

/** Settings from the pod and namespace answers. */
async function lookUp(ep: KubeEndpoint, [podAnswer, nsAnswer]: Promise<PodLike | null>[], ns: string, name: string, conf: CniNetConf, log: Log): Promise<PodSettings> {
  const pod = await podAnswer.catch((e: unknown) => {
    const transient = e instanceof KubeError ? e.transient : true;
    throw new CniFailure(transient ? CNI_ERRORS.tryAgainLater : CNI_ERRORS.ioFailure, `cannot read pod ${ns}/${name} from the Kubernetes API: ${(e as Error).message}`);
  });
  if (!pod) throw new CniFailure(CNI_ERRORS.tryAgainLater, `pod ${ns}/${name} is not known to the Kubernetes API yet`);
  const skip = skipReason(pod);
  if (skip) return { skip };
  // a proxy on the way may serve one request per connection and drop the second: the namespace is
  // then asked for again, alone (an answer it did give, such as 404 or 403, stands)
  const namespace = await nsAnswer.catch((e: unknown) =>
    e instanceof KubeError && e.status === undefined ? kubeGet<PodLike>(ep, `/api/v1/namespaces/${encodeURIComponent(ns)}`).catch(() => null) : null,
  );
  const nsAnnotations = namespace?.metadata?.annotations ?? {};
  const annotation = (k: string) => pod.metadata?.annotations?.[k] || nsAnnotations[k] || undefined;
  let apiPorts: string[] | undefined;
  if (pod.metadata?.labels?.[CONTROL_PLANE_LABEL]) {
    try {
      apiPorts = apiServerPorts((await kubeGet<any>(ep, '/api/v1/namespaces/default/services/kubernetes')) ?? {});
    } catch (e) {
      log.at('warn', `cannot read the kubernetes Service, skipping 443 and 6443: ${(e as Error).message}`);
      apiPorts = ['443', '6443'];
    }
  }
  const { options, issues } = validateLinkerdFlags(flagsForPod(conf, annotation, apiPorts));
  if (!options) throw new CniFailure(CNI_ERRORS.invalidConfig, `invalid settings for pod ${ns}/${name}`, issues.map((i) => i.message).join('; '));
  return { options };
}

/** Where to apply, for each family the configuration asks for. */
async function targets(env: NodeJS.ProcessEnv, conf: CniNetConf): Promise<ApplyTarget[]> {
  const netns = env.CNI_NETNS;
  if (!netns) throw new CniFailure(CNI_ERRORS.invalidEnvironment, 'CNI_NETNS is not set');
  const families: Family[] = conf.linkerd.ipv6 ? ['ipv4', 'ipv6'] : ['ipv4'];
  const mode = conf.linkerd['iptables-mode'] || 'legacy';
  const out: ApplyTarget[] = [];
  for (const family of families) {
    const variant = mode === 'auto' ? (await detectVariant(netns, family)).variant : mode;
    out.push({ netns, family, bins: binaries(variant, family), wait: conf.linkerd['use-wait-flag'] || undefined });
  }
  return out;
}

async function add(env: NodeJS.ProcessEnv, conf: CniNetConf, log: Log): Promise<void> {
  const fields = { container: env.CNI_CONTAINERID, netns: env.CNI_NETNS };
  const since = () => `${Math.round(performance.now())} ms since start`;
  log.at('debug', `ADD: configuration read (${since()})`);
  // the lookup goes first: the restores are started (a few ms of this thread each) while the
  // API server works on the handshake, and each restore's own start-up overlaps the round trip
  let connecting!: () => void;
  const connected = new Promise<void>((r) => (connecting = r));
  const lookup = podOptions(env, conf, log, connecting);
  lookup.catch(() => {}); // awaited below, after the restores are started
  const ts = await targets(env, conf);
  await connected;
  // given nothing, a restore commits nothing
  const started = conf.linkerd.simulate ? [] : ts.map((t) => startRestore(t));
  try {
    const { options, skip } = await lookup;
    log.at('debug', `ADD: pod looked up (${since()})`);
    if (!options) return log.at('info', `skipping: ${skip}`, fields);
    // families side by side, as init does: each is its own transaction, and the pod waits on both
    await Promise.all(ts.map(async (t, i) => {
      const plan = linkerdPlan(options, t.family);
      if (conf.linkerd.simulate) {
        log.at('info', `simulate: would install ${plan.chains.map((c) => c.name).join(', ')} (${t.family}, ${t.bins.variant})`, fields);
        return;
      }
      try {
        const r = await applyOwnedChains(t, plan, started[i]);
        log.at('info', r.changed ? r.actions.join('; ') : 'rules already in place', { ...fields, family: t.family });
        log.at('debug', `ADD: ${t.family} rules applied (${since()})`);
      } catch (e) {
        throw new CniFailure(CNI_ERRORS.applyFailed, `could not install the rules (${t.family}): ${(e as Error).message}`);
      }
    }));
  } finally {
    await releaseRestores(started);
  }
}

async function del(env: NodeJS.ProcessEnv, conf: CniNetConf, log: Log): Promise<void> {
  const netns = env.CNI_NETNS;
  // the sandbox may be gone already: then so are its rules
  if (!netns || !existsSync(netns.includes('/') ? netns : `/run/netns/${netns}`)) return log.at('debug', 'namespace already gone', { netns });
  for (const t of await targets(env, conf)) {
    try {
      const r = await removeOwnedChains(t, 'nat', [REDIRECT_CHAIN, OUTPUT_CHAIN]);
      log.at('info', r.changed ? r.actions.join('; ') : 'no rules to remove', { container: env.CNI_CONTAINERID, family: t.family });
    } catch (e) {
      if (!existsSync(netns)) return;
      throw new CniFailure(CNI_ERRORS.ioFailure, `could not remove the rules (${t.family}): ${(e as Error).message}`);
    }
  }
}

async function check(env: NodeJS.ProcessEnv, conf: CniNetConf, log: Log): Promise<void> {
  const { options, skip } = await podOptions(env, conf, log);
  if (!options) return log.at('debug', `check: nothing to check: ${skip}`);
  for (const t of await targets(env, conf)) {
    const drift = await verifyOwnedChains(t, linkerdPlan(options, t.family));
    if (drift.length)
      throw new CniFailure(CNI_ERRORS.rulesMissing, `linkerd interception rules are not in place (${t.family})`,
        drift.map((d) => `${d.kind} ${d.chain}${d.rule ? `: ${d.rule}` : ''}`).join('; '));
  }
}
