/**
 * `podtables init linkerd`: a drop-in for Linkerd's proxy-init (same flags, short forms and
 * defaults), applied as one iptables-restore transaction per family. Also the flag set, logger
 * and namespace/backend resolution that `clean` and `verify` share.
 */
import type { Command } from 'commander';
import { existsSync, writeFileSync } from 'node:fs';
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import type { LinkerdFlags, LinkerdOptions } from '../mesh/linkerd';
import type { ApplyTarget } from '../kernel/apply';
import type { BackendMode } from '../kernel/backend';
import { addFlags, quickFlags, type FlagSpec } from './flags';
import { CliError, writeOut } from './io';

/** Flags every linkerd subcommand takes: where and how to reach the kernel, and logging. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  { flags: '--netns <ns>', description: 'network namespace to configure: a name from `ip netns` or a path such as /proc/PID/ns/net' },
  { flags: '-w, --use-wait-flag', description: 'pass -w to iptables-restore: wait for the xtables lock (legacy backend)' },
  { flags: '--iptables-mode <mode>', description: 'legacy (default), nft, plain (the iptables on PATH) or auto (the backend that already holds rules here)' },
  { flags: '--firewall-bin-path <path>', description: 'iptables binary (its -restore sibling is used); overrides --iptables-mode' },
  { flags: '--firewall-save-bin-path <path>', description: 'iptables-save binary' },
  { flags: '--ipv6 [bool]', description: 'also configure ip6tables (dual stack)', default: true },
  { flags: '--log-format <format>', description: "'plain' or 'json'", default: 'plain' },
  { flags: '--log-level <level>', description: 'panic, fatal, error, warn, info, debug or trace', default: 'info' },
];

/** Flags that decide the rules (init and verify). */
export const RULE_FLAGS: readonly FlagSpec[] = [
  { flags: '-p, --incoming-proxy-port <port>', description: 'port to redirect incoming traffic to', default: '-1' },
  { flags: '-o, --outgoing-proxy-port <port>', description: 'port to redirect outgoing traffic to', default: '-1' },
  { flags: '-u, --proxy-uid <uid>', description: 'user id of the proxy; its traffic is not redirected', default: '-1' },
  { flags: '-g, --proxy-gid <gid>', description: 'group id of the proxy; its traffic is not redirected', default: '-1' },
  { flags: '-r, --ports-to-redirect <ports>', description: 'inbound ports to redirect (repeat or comma-separate); all when none', repeat: true },
  { flags: '--inbound-ports-to-ignore <ports>', description: 'inbound ports and LOW-HIGH ranges not redirected', repeat: true },
  { flags: '--outbound-ports-to-ignore <ports>', description: 'outbound ports and LOW-HIGH ranges not redirected', repeat: true },
  { flags: '--subnets-to-ignore <cidrs>', description: 'source subnets (IPv4 and IPv6 mixed) whose inbound traffic is not redirected', repeat: true },
];

/** `init linkerd`'s own flags. */
const INIT_FLAGS: readonly FlagSpec[] = [
  { flags: '--simulate', description: 'print the iptables-restore input that would be applied; change nothing' },
  { flags: '--timeout-close-wait-secs <secs>', description: 'set net.netfilter.nf_conntrack_tcp_timeout_close_wait in the namespace', default: '0' },
];

/** Every flag of `init linkerd`, in the order its help lists them. */
export const INIT_LINKERD_FLAGS: readonly FlagSpec[] = [...RULE_FLAGS, ...COMMON_FLAGS, ...INIT_FLAGS];

/** Add the flags every linkerd subcommand takes. */
export function addCommonFlags(c: Command): Command {
  return addFlags(c, COMMON_FLAGS);
}

/** Add the flags that decide the rules. */
export function addRuleFlags(c: Command): Command {
  return addFlags(c, RULE_FLAGS);
}

/** A small logrus-compatible logger: `time=… level=… msg=…` lines or JSON lines, on stdout. */
export class Logger {
  private static LEVELS = ['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'];
  private max: number;
  constructor(private json: boolean, level: string) {
    this.max = Logger.LEVELS.indexOf(level === 'warning' ? 'warn' : level);
  }
  /** Whether `level` names a level. */
  static valid(level: string): boolean {
    return level === 'warning' || Logger.LEVELS.includes(level);
  }
  /** Write one event when its level is enabled. */
  log(level: 'error' | 'warn' | 'info' | 'debug', msg: string, fields: Record<string, string> = {}): void {
    if (Logger.LEVELS.indexOf(level) > this.max) return;
    const time = new Date().toISOString();
    if (this.json) writeOut(1, JSON.stringify({ level: level === 'warn' ? 'warning' : level, msg, ...fields, time }) + '\n');
    else writeOut(1, `time="${time}" level=${level === 'warn' ? 'warning' : level} msg=${JSON.stringify(msg)}${Object.entries(fields).map(([k, v]) => ` ${k}=${JSON.stringify(v)}`).join('')}\n`);
  }
  /** The final rules table: raw text in plain mode (what `kubectl logs` readers expect), one JSON event otherwise. */
  table(family: Family, binary: string, text: string): void {
    if (!text) this.log('info', `no nat table (${binary})`, { family });
    else if (this.json) this.log('info', 'final nat table', { family, binary, rules: text });
    else {
      this.log('info', `final nat table (${binary}):`);
      writeOut(1, text.endsWith('\n') ? text : text + '\n');
    }
  }
}

/** The options commander hands to every linkerd subcommand. */
export interface CommonOpts {
  netns?: string;
  useWaitFlag?: boolean;
  iptablesMode?: string;
  firewallBinPath?: string;
  firewallSaveBinPath?: string;
  ipv6: boolean | string;
  logFormat: string;
  logLevel: string;
}

/** Check the common flags; throws a CliError (exit 2) naming the bad value before anything runs. */
export function checkCommon(o: CommonOpts): { logger: Logger; families: Family[]; mode: BackendMode } {
  const problems: string[] = [];
  if (!['plain', 'json'].includes(o.logFormat)) problems.push(`--log-format: unknown format "${o.logFormat}" (plain or json)`);
  if (!Logger.valid(o.logLevel)) problems.push(`--log-level: unknown level "${o.logLevel}" (panic, fatal, error, warn, info, debug, trace)`);
  const mode = o.iptablesMode ?? 'legacy';
  if (!['legacy', 'nft', 'plain', 'auto'].includes(mode)) problems.push(`--iptables-mode: unknown mode "${mode}" (legacy, nft, plain or auto)`);
  const v6 = String(o.ipv6);
  if (!['true', 'false', '1', '0'].includes(v6)) problems.push(`--ipv6: invalid boolean "${v6}" (true or false)`);
  if (o.netns !== undefined && !existsSync(o.netns.includes('/') ? o.netns : `/run/netns/${o.netns}`))
    problems.push(`--netns: network namespace "${o.netns}" not found`);
  if (problems.length) throw new CliError(problems.join('\n'));
  return {
    logger: new Logger(o.logFormat === 'json', o.logLevel),
    families: v6 === 'true' || v6 === '1' ? ['ipv4', 'ipv6'] : ['ipv4'],
    mode: mode as BackendMode,
  };
}

/** Where to apply for one family: the binaries of the chosen (or detected) variant. */
export async function resolveTarget(o: CommonOpts, mode: BackendMode, family: Family, logger: Logger): Promise<ApplyTarget> {
  const { binaries, detectVariant } = await import('../kernel/backend');
  const wait = !!o.useWaitFlag;
  if (o.firewallBinPath || o.firewallSaveBinPath) {
    const bin = o.firewallBinPath ?? o.firewallSaveBinPath!.replace(/-save$/, '');
    const over = { bin, save: o.firewallSaveBinPath ?? `${bin}-save` };
    return { netns: o.netns, family, wait, bins: binaries('legacy', family, over) };
  }
  let variant = mode;
  if (variant === 'auto') {
    const d = await detectVariant(o.netns, family);
    if (d.warning) logger.log('warn', d.warning, { family });
    logger.log('info', `iptables-mode auto: using ${d.variant}`, { family });
    variant = d.variant;
  }
  return { netns: o.netns, family, wait, bins: binaries(variant as 'legacy' | 'nft' | 'plain', family) };
}

/** Validate the rule flags; a CliError (exit 2) lists every bad value. */
export async function linkerdOptions(o: Record<string, unknown>): Promise<{ options: LinkerdOptions; warnings: Issue[] }> {
  const { validateLinkerdFlags } = await import('../mesh/linkerd');
  const flags: LinkerdFlags = {
    incomingProxyPort: o.incomingProxyPort as string,
    outgoingProxyPort: o.outgoingProxyPort as string,
    proxyUid: o.proxyUid as string,
    proxyGid: o.proxyGid as string,
    portsToRedirect: o.portsToRedirect as string[],
    inboundPortsToIgnore: o.inboundPortsToIgnore as string[],
    outboundPortsToIgnore: o.outboundPortsToIgnore as string[],
    subnetsToIgnore: o.subnetsToIgnore as string[],
  };
  const res = validateLinkerdFlags(flags);
  const errors = res.issues.filter((i) => i.severity === 'error');
  if (errors.length || !res.options) throw new CliError(errors.map((e) => e.message).join('\n') + '\nnothing was changed');
  return { options: res.options, warnings: res.issues.filter((i) => i.severity === 'warning') };
}

/** Turn a kernel-side failure into a one-line CLI error (exit 1). */
export async function kernelErrors<T>(fn: () => Promise<T>): Promise<T> {
  const { ApplyError } = await import('../kernel/apply');
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ApplyError) throw new CliError(e.message, 1);
    throw e;
  }
}

const BETTER = `
Compared with Linkerd's proxy-init, podtables:
  - applies each family in one iptables-restore --noflush transaction: a failure or a kill
    leaves the previous rules exactly (upstream runs one iptables process per rule);
  - is idempotent: re-running, with the same or changed flags, refills PROXY_INIT_REDIRECT and
    PROXY_INIT_OUTPUT, keeps exactly one jump to each and touches no other rule;
  - sends each --subnets-to-ignore entry to its own family (upstream gives IPv4 subnets to ip6tables);
  - rejects every invalid port, range, CIDR or id before changing anything, naming it (exit 2);
  - --iptables-mode auto picks the backend that already holds rules here, warning when both do;
  - logs each action and, last, the kernel's iptables-save -t nat, as plain text or JSON lines.
`;

/** The shared `init`, `clean` or `verify` parent command (created once; each mesh adds its subcommand). */
export function meshCommand(program: Command, name: 'init' | 'clean' | 'verify', description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}

/** Register `init linkerd`. */
export function register(program: Command): void {
  const init = meshCommand(program, 'init', "install a service mesh's interception rules in a network namespace");
  const linkerd = init.command('linkerd').description("set up a pod's nat rules as Linkerd's proxy-init does");
  addFlags(linkerd, INIT_LINKERD_FLAGS)
    .addHelpText('after', BETTER + '\nExample:\n  podtables init linkerd -p 4143 -o 4140 -u 2102 --inbound-ports-to-ignore 4190,4191 --netns pod1\n')
    .action(initLinkerdAction);
}

/**
 * `init linkerd` without commander, for a command line of plain known flags (what an init
 * container runs); undefined for anything else, which commander then reads.
 */
export function quickInitLinkerd(argv: readonly string[]): (() => Promise<void>) | undefined {
  if (argv[2] !== 'init' || argv[3] !== 'linkerd') return undefined;
  const o = quickFlags(argv.slice(4), INIT_LINKERD_FLAGS);
  return o && (() => initLinkerdAction(o as unknown as InitLinkerdOpts));
}

/** What `init linkerd` is given. */
type InitLinkerdOpts = CommonOpts & Record<string, unknown> & { simulate?: boolean; timeoutCloseWaitSecs: string };

async function initLinkerdAction(o: InitLinkerdOpts): Promise<void> {
  const { logger, families, mode } = checkCommon(o);
  const { options } = await linkerdOptions(o);
  const closeWait = o.timeoutCloseWaitSecs;
  if (!/^\d+$/.test(closeWait)) throw new CliError(`--timeout-close-wait-secs: invalid number "${closeWait}"\nnothing was changed`);
  await kernelErrors(() => initLinkerd(o, options, { logger, families, mode, simulate: !!o.simulate, closeWait: Number(closeWait) }));
}

async function initLinkerd(o: CommonOpts, options: LinkerdOptions, r: { logger: Logger; families: Family[]; mode: BackendMode; simulate: boolean; closeWait: number }): Promise<void> {
  const { linkerdPlan } = await import('../mesh/linkerd');
  const { applyFreshFamilies, applyOwnedChains, readTable, readTableText, planApply, tableBlock } = await import('../kernel/apply');
  const { logger } = r;
  if (r.closeWait && !r.simulate) {
    const key = 'net.netfilter.nf_conntrack_tcp_timeout_close_wait';
    if (!o.netns) {
      // /proc/sys/net is per network namespace: here it is our own
      try {
        writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, `${r.closeWait}\n`);
      } catch (e) {
        throw new CliError(`cannot set ${key}: ${(e as Error).message}`, 1);
      }
    } else {
      const { runIn } = await import('../kernel/backend');
      const res = await runIn(o.netns, 'sysctl', ['-w', `${key}=${r.closeWait}`]).catch((e: Error) => ({ code: 127, stdout: '', stderr: e.message }));
      if (res.code !== 0) throw new CliError(`cannot set ${key}: ${res.stderr.trim()}`, 1);
    }
    logger.log('info', `${key} = ${r.closeWait}`);
  }
  // each family's target (or why there is none) and rules
  const targets = await Promise.all(r.families.map((family) => resolveTarget(o, r.mode, family, logger).then((target) => ({ target }), (error: unknown) => ({ target: undefined, error }))));
  const plans = r.families.map((family) => linkerdPlan(options, family));
  // A pod's namespace is new: every family's first transaction in one process run to its end
  // (families whose target could not be had are left to fail below, with their own message)
  const ready = targets.flatMap((t, i) => (t.target ? [i] : []));
  const fresh = r.simulate ? [] : applyFreshFamilies(ready.map((i) => targets[i].target!), ready.map((i) => plans[i]));
  const freshOf = (i: number) => fresh[ready.indexOf(i)];
  // families run side by side: each is its own transaction, and start-up time is what a pod waits on
  const results = await Promise.allSettled(
    r.families.map(async (family, i) => {
      const { target, error } = targets[i] as { target?: ApplyTarget; error?: unknown };
      if (!target) throw error;
      const plan = plans[i];
      if (r.simulate) {
        const live = await readTable(target, 'nat').catch(() => undefined);
        if (!live) logger.log('warn', `cannot read the live nat table with ${target.bins.save}; showing the change for an empty one`, { family });
        const p = planApply(live?.table, plan, family);
        logger.log('info', p.text ? `would run ${target.bins.restore} --noflush with:` : 'already configured: nothing would change', { family });
        if (p.text) process.stdout.write(p.text);
        return;
      }
      const f = freshOf(i);
      const res = f?.result ?? (await applyOwnedChains(target, plan, undefined, !!f?.tried));
      for (const a of res.actions) logger.log('info', a, { family });
      if (res.text) logger.log('debug', `${target.bins.restore} --noflush input:\n${res.text}`, { family });
      else logger.log('info', 'already configured: nothing changed', { family });
      return { family, binary: target.bins.save, text: res.after !== undefined ? tableBlock(res.after, 'nat') : await readTableText(target, 'nat') };
    }),
  );
  let failed: unknown;
  for (const [i, res] of results.entries()) {
    if (res.status === 'fulfilled') {
      if (res.value) logger.table(res.value.family, res.value.binary, res.value.text);
      continue;
    }
    // as upstream: IPv6 failing after IPv4 worked is logged, not fatal (some nodes lack ip6tables)
    if (r.families[i] === 'ipv6' && results[0].status === 'fulfilled') logger.log('error', `ipv6 not configured: ${(res.reason as Error).message}`, { family: 'ipv6' });
    else failed ??= res.reason;
  }
  if (failed) throw failed;
}
