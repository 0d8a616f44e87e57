/**
 * `podtables demo [linkerd|istio]`: trace the classic sidecar scenarios through a default pod,
 * offline (no root needed), on the rules `podtables init linkerd` and `init istio` install.
 */
import type { Command } from 'commander';
import { defaultPodHost, type Host } from '../model/host';
import type { Ruleset } from '../model/ruleset';
import { Engine } from '../netfilter/engine';
import { formatTrace } from '../netfilter/format';
import { parsePacketSpec } from '../netfilter/spec';
import { traceJson, type Trace } from '../netfilter/trace';
import { saveRuleset } from '../syntax/save';
import { linkerdRuleset as generateLinkerd, validateLinkerdFlags } from '../mesh/linkerd';
import { istioRules, ISTIO_DEFAULTS } from '../mesh/istio';
import { CliError } from './io';

/** The chart's defaults, as the injector passes them to linkerd-init. */
const CHART_DEFAULTS = {
  incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: '2102',
  inboundPortsToIgnore: ['4190,4191,4567,4568'], outboundPortsToIgnore: ['4567,4568'],
};

/** The Linkerd pod's ruleset: what `podtables init linkerd` installs for the chart defaults. */
export function linkerdRuleset(): Ruleset {
  const { options, issues } = validateLinkerdFlags(CHART_DEFAULTS);
  if (!options) throw new Error(`demo settings do not validate: ${issues.map((i) => i.message).join('; ')}`);
  return generateLinkerd(options, 'ipv4');
}

/** The same, in iptables-save form (for loading into a kernel). */
export const LINKERD_RULES = saveRuleset(linkerdRuleset());

/** The Linkerd pod: the default pod host with the proxy (uid 2102) and an app on 8080 (uid 1000). */
export function linkerdPod(): Host {
  return defaultPodHost([
    { proto: 'tcp', addr: '0.0.0.0', port: 4143, uid: 2102, process: 'linkerd-proxy (inbound)' },
    { proto: 'tcp', addr: '127.0.0.1', port: 4140, uid: 2102, process: 'linkerd-proxy (outbound)' },
    { proto: 'tcp', addr: '0.0.0.0', port: 4191, uid: 2102, process: 'linkerd-proxy (admin)' },
    { proto: 'tcp', addr: '0.0.0.0', port: 8080, uid: 1000, process: 'app' },
  ]);
}

/** One demo scenario: a title and the packets to trace, in order, through one engine. */
export interface Scenario {
  title: string;
  packets: string[];
}

/** The scenarios of Linkerd's documentation, on the default pod (pod IP 10.244.0.13, a ClusterIP 10.96.0.20). */
export const LINKERD_SCENARIOS: Scenario[] = [
  { title: 'Inbound to an app port: redirected to the proxy\'s inbound port 4143', packets: ['tcp 10.244.1.7:41000 -> 10.244.0.13:8080 in eth0'] },
  { title: 'Inbound to a skipped port (4191, the proxy admin port): straight to the socket', packets: ['tcp 10.244.1.7:41000 -> 10.244.0.13:4191 in eth0'] },
  { title: 'Outbound from the app: redirected to the proxy\'s outbound port 4140', packets: ['tcp -> 10.244.2.9:80 uid 1000'] },
  { title: 'The proxy\'s own outbound connection (uid 2102): leaves the pod', packets: ['tcp -> 10.244.2.9:80 uid 2102'] },
  { title: 'The app calls itself via 127.0.0.1: loopback, no proxy', packets: ['tcp -> 127.0.0.1:8080 uid 1000'] },
  { title: 'The app calls itself via its pod IP: out lo, no proxy', packets: ['tcp -> 10.244.0.13:8080 uid 1000'] },
  {
    title: 'The app calls itself via its ClusterIP: to the proxy, whose connection to the pod IP reaches the app',
    packets: ['tcp -> 10.96.0.20:80 uid 1000', 'tcp 10.244.0.13:40001 -> 10.244.0.13:8080 uid 2102'],
  },
];

/** The Istio pod: Envoy (uid 1337) on 15001 (outbound), 15006 (inbound) and 15021 (health), the app (uid 1000) on 8080. */
export function istioPod(): Host {
  return defaultPodHost([
    { proto: 'tcp', addr: '0.0.0.0', port: 15001, uid: 1337, process: 'envoy (outbound)' },
    { proto: 'tcp', addr: '0.0.0.0', port: 15006, uid: 1337, process: 'envoy (inbound)' },
    { proto: 'tcp', addr: '0.0.0.0', port: 15021, uid: 1337, process: 'envoy (health)' },
    { proto: 'tcp', addr: '0.0.0.0', port: 8080, uid: 1000, process: 'app' },
  ]);
}

/** istio-iptables as the sidecar injector runs it: `-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021,15020`. */
export function istioRuleset(): Ruleset {
  const r = istioRules({ ...ISTIO_DEFAULTS, outboundIpRangesInclude: '*', inboundPortsInclude: '*', inboundPortsExclude: '15090,15021,15020' });
  if (r.issues.some((i) => i.severity === 'error')) throw new Error(`demo ruleset does not build: ${r.issues[0].message}`);
  return r.v4;
}

/** The Istio sidecar's classic paths on the default pod (pod IP 10.244.0.13, a ClusterIP 10.96.0.20). */
export const ISTIO_SCENARIOS: Scenario[] = [
  { title: 'Inbound to an app port: redirected to Envoy\'s inbound port 15006', packets: ['tcp 10.244.1.7:41000 -> 10.244.0.13:8080 in eth0'] },
  { title: 'Inbound to an excluded port (15021, health): straight to the socket', packets: ['tcp 10.244.1.7:41000 -> 10.244.0.13:15021 in eth0'] },
  { title: 'Outbound from the app: redirected to Envoy\'s outbound port 15001', packets: ['tcp -> 10.244.2.9:80 uid 1000'] },
  { title: 'Envoy\'s own outbound connection (uid 1337): leaves the pod', packets: ['tcp -> 10.244.2.9:80 uid 1337'] },
  { title: 'The app calls itself via 127.0.0.1: no proxy', packets: ['tcp -> 127.0.0.1:8080 uid 1000'] },
  { title: 'The app calls itself via its pod IP: out lo, no proxy', packets: ['tcp -> 10.244.0.13:8080 uid 1000'] },
  {
    title: 'The app calls itself via its ClusterIP: Envoy outbound, then Envoy\'s connection to the pod IP is captured inbound, then Envoy reaches the app from 127.0.0.6',
    packets: ['tcp -> 10.96.0.20:80 uid 1000', 'tcp 10.244.0.13:40001 -> 10.244.0.13:8080 uid 1337', 'tcp 127.0.0.6:40002 -> 10.244.0.13:8080 uid 1337'],
  },
];

/** Trace every scenario; one list of traces per scenario. */
export function runScenarios(engine: Engine, scenarios: Scenario[]): { scenario: Scenario; traces: Trace[] }[] {
  return scenarios.map((scenario) => {
    engine.flows.clear();
    return { scenario, traces: scenario.packets.map((p) => engine.trace(parsePacketSpec(p))) };
  });
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('trace the classic sidecar scenarios through a default pod (offline, no root needed)')
    .argument('[mesh]', 'linkerd or istio', 'linkerd')
    .option('--json', 'print the traces as JSON (see docs/trace-json.md)')
    .action((mesh: string, o: { json?: boolean }) => {
      if (mesh !== 'linkerd' && mesh !== 'istio') throw new CliError(`demo: unknown mesh '${mesh}' (linkerd or istio)`);
      const istio = mesh === 'istio';
      const engine = istio ? new Engine(istioPod(), [istioRuleset()]) : new Engine(linkerdPod(), [linkerdRuleset()]);
      const results = runScenarios(engine, istio ? ISTIO_SCENARIOS : LINKERD_SCENARIOS);
      if (o.json) {
        process.stdout.write(JSON.stringify(results.map((r) => ({ title: r.scenario.title, packets: r.scenario.packets, traces: r.traces.map(traceJson) })), null, 2) + '\n');
        return;
      }
      const out: string[] = [istio
        ? 'An Istio pod (sidecar injector defaults): eth0 10.244.0.13/24, Envoy uid 1337 on 15006 (in) and 15001 (out), app uid 1000 on 8080.'
        : 'A Linkerd pod (chart defaults): eth0 10.244.0.13/24, proxy uid 2102 on 4143 (in) and 4140 (out), app uid 1000 on 8080.', ''];
      results.forEach(({ scenario, traces }, n) => {
        out.push(`${n + 1}. ${scenario.title}`);
        traces.forEach((t, k) => {
          out.push(`   $ podtables trace '${scenario.packets[k]}'`);
          out.push(formatTrace(t).split('\n').map((l) => '   ' + l).join('\n'));
        });
        out.push('');
      });
      process.stdout.write(out.join('\n'));
    });
}
