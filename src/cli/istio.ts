/**
 * `podtables init istio`, `clean istio` and `verify istio`: a drop-in for
 * `pilot-agent istio-iptables` (same flags, short forms, environment defaults), applied as one
 * iptables-restore transaction per family and table set, idempotently.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { Family } from '../model/addr';
import type { Ruleset } from '../model/ruleset';
import { CliError } from './io';
import { meshCommand } from './init';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const envBool = (name: string) => /^(1|true|yes)$/i.test(process.env[name] ?? '');

/** istio-iptables' flags, with its short forms and the environment variables it reads for defaults. */
export function addIstioFlags(c: Command): Command {
  return c
    .option('-p, --envoy-port <port>', 'outbound capture port (Envoy) [$ENVOY_PORT]', env('ENVOY_PORT', '15001'))
    .option('-z, --inbound-capture-port <port>', 'inbound capture port [$INBOUND_CAPTURE_PORT]', env('INBOUND_CAPTURE_PORT', '15006'))
    .option('-e, --inbound-tunnel-port <port>', 'the tunnel port, never captured [$INBOUND_TUNNEL_PORT]', env('INBOUND_TUNNEL_PORT', '15008'))
    .option('-u, --proxy-uid <uids>', "the proxy's uids, comma-separated; their traffic is not captured", '1337')
    .option('-g, --proxy-gid <gids>', "the proxy's gids (default: the uids)", '')
    .option('-m, --istio-inbound-interception-mode <mode>', 'REDIRECT or TPROXY [$ISTIO_INBOUND_INTERCEPTION_MODE]', env('ISTIO_INBOUND_INTERCEPTION_MODE', 'REDIRECT'))
    .option('-b, --istio-inbound-ports <ports>', 'inbound ports to capture, "*" for all [$ISTIO_INBOUND_PORTS]', env('ISTIO_INBOUND_PORTS', ''))
    .option('-d, --istio-local-exclude-ports <ports>', 'inbound ports not captured when -b is "*" [$ISTIO_LOCAL_EXCLUDE_PORTS]', env('ISTIO_LOCAL_EXCLUDE_PORTS', ''))
    .option('-i, --istio-service-cidr <cidrs>', 'outbound destinations to capture, "*" for all [$ISTIO_SERVICE_CIDR]', env('ISTIO_SERVICE_CIDR', ''))
    .option('-x, --istio-service-exclude-cidr <cidrs>', 'outbound destinations never captured [$ISTIO_SERVICE_EXCLUDE_CIDR]', env('ISTIO_SERVICE_EXCLUDE_CIDR', ''))
    .option('-q, --istio-outbound-ports <ports>', 'outbound ports always captured [$ISTIO_OUTBOUND_PORTS]', env('ISTIO_OUTBOUND_PORTS', ''))
    .option('-o, --istio-local-outbound-ports-exclude <ports>', 'outbound ports never captured [$ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE]', env('ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE', ''))
    .option('-c, --istio-exclude-interfaces <ifaces>', 'interfaces whose traffic is never captured [$ISTIO_EXCLUDE_INTERFACES]', env('ISTIO_EXCLUDE_INTERFACES', ''))
    .option('-k, --kube-virt-interfaces <ifaces>', 'virtual interfaces whose inbound traffic is treated as outbound', '')
    .option('-t, --istio-inbound-tproxy-mark <mark>', 'TPROXY mark', '1337')
    .option('-r, --istio-inbound-tproxy-route-table <table>', 'routing table for TPROXY-marked packets', '133')
    .option('--redirect-dns', 'capture DNS to the agent on 15053 [$ISTIO_META_DNS_CAPTURE]', envBool('ISTIO_META_DNS_CAPTURE'))
    .option('--capture-all-dns', 'capture all port-53 traffic, not only to the resolv.conf servers', false)
    .option('--drop-invalid', 'drop packets conntrack finds invalid instead of resetting them [$INVALID_DROP]', envBool('INVALID_DROP'))
    .option('--dual-stack', 'also write the IPv6 rules [$ISTIO_AGENT_DUAL_STACK]', envBool('ISTIO_AGENT_DUAL_STACK'))
    .option('--owner-groups-include <groups>', 'capture only these owner groups ("*": all) [$ISTIO_OUTBOUND_OWNER_GROUPS]', env('ISTIO_OUTBOUND_OWNER_GROUPS', '*'))
    .option('--owner-groups-exclude <groups>', 'never capture these owner groups [$ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE]', env('ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE', ''))
    .option('--host-ipv4-loopback-cidr <cidr>', "the host's loopback range", '127.0.0.1/32')
    .option('--resolv-conf <file>', 'where the DNS servers to capture are listed', '/etc/resolv.conf')
    .option('-n, --dry-run', 'print the rules that would be applied; change nothing', false)
    .option('--netns <ns>', 'network namespace: a name from `ip netns` or a path such as /proc/PID/ns/net')
    .option('-w, --use-wait-flag', 'wait for the xtables lock', false)
    .option('--iptables-mode <mode>', 'legacy, nft, plain or auto', 'auto')
    .option('--force-iptables-binary <bin>', 'use this iptables binary (its -save and -restore siblings too)');
}

/** DNS servers from a resolv.conf, split by family. */
export function resolvServers(text: string): { v4: string[]; v6: string[] } {
  const v4: string[] = [], v6: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) (m[1].includes(':') ? v6 : v4).push(m[1].replace(/%.*$/, ''));
  }
  return { v4, v6 };
}

/** The generator's options from parsed flags. */
export async function istioOptionsFrom(o: Record<string, any>) {
  const { ISTIO_DEFAULTS } = await import('../mesh/istio');
  const mode = String(o.istioInboundInterceptionMode).toUpperCase();
  let dns = { v4: [] as string[], v6: [] as string[] };
  if (o.redirectDns && !o.captureAllDns) {
    try {
      dns = resolvServers(readFileSync(o.resolvConf, 'utf8'));
    } catch (e) {
      throw new CliError(`--resolv-conf ${o.resolvConf}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  return {
    ...ISTIO_DEFAULTS,
    proxyPort: o.envoyPort, inboundCapturePort: o.inboundCapturePort, inboundTunnelPort: o.inboundTunnelPort,
    proxyUid: o.proxyUid, proxyGid: o.proxyGid, interceptionMode: mode as 'REDIRECT' | 'TPROXY',
    inboundPortsInclude: o.istioInboundPorts, inboundPortsExclude: o.istioLocalExcludePorts,
    outboundPortsInclude: o.istioOutboundPorts, outboundPortsExclude: o.istioLocalOutboundPortsExclude,
    outboundIpRangesInclude: o.istioServiceCidr, outboundIpRangesExclude: o.istioServiceExcludeCidr,
    excludeInterfaces: o.istioExcludeInterfaces, kubeVirtInterfaces: o.kubeVirtInterfaces,
    tproxyMark: o.istioInboundTproxyMark, tproxyRouteTable: o.istioInboundTproxyRouteTable,
    redirectDns: !!o.redirectDns, captureAllDns: !!o.captureAllDns, dnsServersV4: dns.v4, dnsServersV6: dns.v6,
    dropInvalid: !!o.dropInvalid, ipv6: !!o.dualStack, ownerGroupsInclude: o.ownerGroupsInclude,
    ownerGroupsExclude: o.ownerGroupsExclude, hostIpv4LoopbackCidr: o.hostIpv4LoopbackCidr,
  };
}

/** Generate, or exit 2 naming every bad value. */
export async function istioRulesets(o: Record<string, any>): Promise<{ family: Family; ruleset: Ruleset }[]> {
  const { istioRules } = await import('../mesh/istio');
  const { systemNames } = await import('../kernel/names');
  const r = istioRules(await istioOptionsFrom(o), systemNames());
  const errors = r.issues.filter((i) => i.severity === 'error');
  if (errors.length) throw new CliError(errors.map((e) => e.message).join('\n'));
  return [{ family: 'ipv4' as Family, ruleset: r.v4 }, ...(r.v6 ? [{ family: 'ipv6' as Family, ruleset: r.v6 }] : [])];
}

/** Where to apply, per family, from the common flags. */
async function istioTargets(o: Record<string, any>, families: Family[]) {
  const { binaries, detectVariant } = await import('../kernel/backend');
  const mode = String(o.iptablesMode);
  if (!['legacy', 'nft', 'plain', 'auto'].includes(mode)) throw new CliError(`--iptables-mode: must be legacy, nft, plain or auto, not "${mode}"`);
  const out = [];
  for (const family of families) {
    let variant = mode as 'legacy' | 'nft' | 'plain';
    if (mode === 'auto') {
      const d = await detectVariant(o.netns, family);
      if (d.warning) process.stderr.write(`podtables: warning: ${d.warning}\n`);
      variant = d.variant;
    }
    const over = o.forceIptablesBinary ? { bin: o.forceIptablesBinary, save: `${o.forceIptablesBinary}-save` } : {};
    out.push({ netns: o.netns as string | undefined, family, bins: binaries(variant, family, over), wait: o.useWaitFlag ? true : undefined });
  }
  return out;
}

/** Register `init istio`, `clean istio` and `verify istio` under the shared mesh commands. */
export function registerIstio(program: Command): void {
  const init = addIstioFlags(meshCommand(program, 'init', "install a service mesh's interception rules in a network namespace").command('istio'))
    .description("set up a pod's interception rules as Istio's istio-iptables does (nat, mangle and raw; TPROXY routes)")
    .option('--cleanup-only', 'remove the rules instead of installing them (as `clean istio`)', false)
    .option('--reconcile', 'accepted for compatibility: podtables always brings the live rules to the wanted ones', false)
    .addHelpText('after', `
Better than istio-iptables: each family's change is one iptables-restore transaction (a failure
leaves the namespace as it was); running it again, with the same or other flags, refills the ISTIO_
chains and keeps one copy of each of our rules in the built-in chains; bad values are refused
before anything changes, naming the value; IPv4 and IPv6 ranges in one list go to their family.

Example:
  podtables init istio -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021 --netns pod1
`)
    .action(async (o) => runIstio(o, o.cleanupOnly ? 'clean' : 'init'));
  void init;
  addIstioFlags(meshCommand(program, 'clean', 'remove what `init` installed, and nothing else').command('istio'))
    .description('remove the ISTIO_ chains, the jumps into them, our other built-in-chain rules (as the same flags generate them) and the TPROXY routes')
    .action(async (o) => runIstio(o, 'clean'));
  addIstioFlags(meshCommand(program, 'verify', 'check that the live rules are exactly what `init` would install').command('istio'))
    .description('report missing, extra and reordered rules in the ISTIO_ chains and our built-in-chain rules (exit 1 on drift)')
    .action(async (o) => runIstio(o, 'verify'));
}

async function runIstio(o: Record<string, any>, what: 'init' | 'clean' | 'verify'): Promise<void> {
  const { istioRules, istioOwned } = await import('../mesh/istio');
  const { systemNames } = await import('../kernel/names');
  const opts = await istioOptionsFrom(o);
  const gen = istioRules(opts, systemNames());
  const errors = gen.issues.filter((i) => i.severity === 'error');
  if (errors.length) throw new CliError(errors.map((e) => e.message).join('\n') + '\nnothing was changed');
  const rulesets = [gen.v4, ...(gen.v6 ? [gen.v6] : [])];
  if (o.dryRun && what === 'init') {
    const { saveRuleset } = await import('../syntax/save');
    for (const rs of rulesets) process.stdout.write(`# ${rs.family === 'ipv6' ? 'ip6tables' : 'iptables'}\n${saveRuleset(rs)}`);
    return;
  }
  const apply = await import('../kernel/apply');
  const routes = await import('../kernel/routes');
  const targets = await istioTargets(o, rulesets.map((r) => r.family));
  let drift = 0;
  for (const [k, t] of targets.entries()) {
    const sets = istioOwned(rulesets[k], gen.top);
    const route = { netns: t.netns, family: t.family, mark: Number(opts.tproxyMark), table: Number(opts.tproxyRouteTable) };
    try {
      if (what === 'init') {
        const r = await apply.applyOwnedTables(t, sets);
        for (const a of r.actions) process.stdout.write(`${t.family}: ${a}\n`);
        if (!r.changed) process.stdout.write(`${t.family}: rules already in place\n`);
        if (opts.interceptionMode === 'TPROXY') for (const a of await routes.ensureTproxyRoute(route)) process.stdout.write(`${t.family}: ${a}\n`);
        if (t.family === 'ipv6') for (const a of await routes.ensurePassthroughAddress(t.netns)) process.stdout.write(`${t.family}: ${a}\n`);
      } else if (what === 'clean') {
        // every ISTIO_ chain goes, whatever flags made it; our other built-in-chain rules are known by the flags given
        const { ISTIO_CHAINS } = await import('../mesh/istio');
        const all = (['raw', 'mangle', 'nat', 'filter'] as const).map((table) => ({
          table,
          chains: ISTIO_CHAINS.map((name) => ({ name, rules: [] })),
          jumps: sets.find((x) => x.table === table)?.jumps ?? [],
        }));
        const r = await apply.removeOwnedTables(t, all);
        for (const a of r.actions) process.stdout.write(`${t.family}: ${a}\n`);
        for (const a of await routes.removeTproxyRoute(route)) process.stdout.write(`${t.family}: ${a}\n`);
        if (t.family === 'ipv6') for (const a of await routes.removePassthroughAddress(t.netns)) process.stdout.write(`${t.family}: ${a}\n`);
      } else {
        const d = await apply.verifyOwnedTables(t, sets);
        drift += d.length;
        for (const x of d) process.stdout.write(`${t.family}: ${x.kind} ${x.chain}${x.rule ? `: ${x.rule}` : ''}\n`);
      }
    } catch (e) {
      if (e instanceof apply.ApplyError) throw new CliError(`${t.family}: ${e.message}`, 1);
      throw e;
    }
  }
  if (what === 'verify') {
    if (drift) process.exitCode = 1;
    else process.stdout.write('in place: the live rules are what these flags install\n');
  }
}
