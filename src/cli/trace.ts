/** `podtables trace`: follow one packet through a host's rulesets, step by step. */
import type { Command } from 'commander';
import { defaultPodHost, HostError, parseHost, type Host } from '../model/host';
import type { Ruleset } from '../model/ruleset';
import { Engine } from '../netfilter/engine';
import { formatTrace } from '../netfilter/format';
import { parsePacketSpec, SpecError } from '../netfilter/spec';
import { traceJson } from '../netfilter/trace';
import { parseAny } from '../syntax/index';
import { CliError, readInput, report } from './io';

/** A snapshot file as `podtables snapshot` writes it: a host and the saved rulesets. */
interface SnapshotFile {
  host: unknown;
  rules?: { ipv4?: string; ipv6?: string };
}

function loadRules(files: string[]): Ruleset[] {
  const out: Ruleset[] = [];
  for (const f of files) {
    const text = readInput(f);
    const res = parseAny(text);
    report(res.issues, f === '-' ? '<stdin>' : f, text);
    if (out.some((r) => r.family === res.ruleset.family)) throw new CliError(`${f}: a second ${res.ruleset.family} ruleset: give at most one --rules per family`);
    out.push(res.ruleset);
  }
  return out;
}

function loadSnapshot(file: string): { host: Host; rules: Ruleset[] } {
  const text = readInput(file);
  let snap: SnapshotFile;
  try {
    snap = JSON.parse(text) as SnapshotFile;
  } catch (e) {
    throw new CliError(`${file}: not a snapshot (JSON): ${(e as Error).message}`);
  }
  const host = hostOr(file, () => parseHost(JSON.stringify(snap.host)));
  const rules: Ruleset[] = [];
  for (const fam of ['ipv4', 'ipv6'] as const) {
    const t = snap.rules?.[fam];
    if (!t) continue;
    const res = parseAny(t, { family: fam });
    report(res.issues, `${file} (${fam} rules)`, t);
    rules.push(res.ruleset);
  }
  return { host, rules };
}

function hostOr(file: string, f: () => Host): Host {
  try {
    return f();
  } catch (e) {
    if (e instanceof HostError) throw new CliError(`${file}: ${e.message}`);
    throw e;
  }
}

export function register(program: Command): void {
  program
    .command('trace')
    .description('trace a packet through a host\'s rules, step by step, as the kernel would')
    .option('--rules <file>', 'a ruleset (iptables-save form); once for v4 and once for v6', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--host <file>', 'the host (YAML or JSON); default: a pod with eth0 10.244.0.13/24')
    .option('--snapshot <file>', 'a host and its rules captured by `podtables snapshot`')
    .option('--json', 'print the trace as JSON (docs/trace-json.md)')
    .option('--all-branches', 'list every outcome of random rules (statistic) with its probability')
    .option('--seed <n>', 'seed for random rules', '0')
    .option('--assume <what>', 'what an undecided match does: match or nomatch', 'match')
    // the packet's own '->' looks like an option to the parser: let it through as a word
    .allowUnknownOption()
    .argument('<packet...>', 'e.g. "tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0", or "tcp -> 10.96.0.10:80 uid 1000"')
    .addHelpText('after', `
Packets:
  tcp 10.0.0.5:41000 -> 10.244.0.13:8080 in eth0     arriving on eth0
  tcp -> 10.96.0.10:80 uid 1000                      made locally by uid 1000 (source chosen by routing)
  icmp 10.0.0.5 -> 10.244.0.13 in eth0               an echo request (or: type N code N)
  optional: gid N, mark 0x.., state new|established|related|invalid, flags SYN,ACK, len N, ttl N, tos N
`)
    .action((words: string[], o: { rules: string[]; host?: string; snapshot?: string; json?: boolean; allBranches?: boolean; seed: string; assume: string }) => {
      const stray = words.find((w) => w.startsWith('--'));
      if (stray) throw new CliError(`trace: unknown option '${stray}'`);
      if (o.assume !== 'match' && o.assume !== 'nomatch') throw new CliError(`--assume: expected match or nomatch, not '${o.assume}'`);
      if (!/^\d+$/.test(o.seed)) throw new CliError(`--seed: expected a number, not '${o.seed}'`);
      if (o.host && o.snapshot) throw new CliError('--host and --snapshot both give the host: use one');
      let host: Host = defaultPodHost();
      let rules: Ruleset[] = [];
      if (o.snapshot) ({ host, rules } = loadSnapshot(o.snapshot));
      if (o.host) host = hostOr(o.host, () => parseHost(readInput(o.host!)));
      if (o.rules.length) rules = loadRules(o.rules);
      let spec;
      try {
        spec = parsePacketSpec(words);
      } catch (e) {
        if (e instanceof SpecError) throw new CliError(`packet: ${e.message}`);
        throw e;
      }
      const engine = new Engine(host, rules, { assume: o.assume, seed: Number(o.seed) });
      let traces;
      try {
        traces = o.allBranches ? engine.traceAll(spec) : [engine.trace(spec)];
      } catch (e) {
        if (e instanceof HostError) throw new CliError(`packet: ${e.message}`);
        throw e;
      }
      if (o.json) {
        const body = o.allBranches ? { outcomes: traces.map(traceJson) } : traceJson(traces[0]);
        process.stdout.write(JSON.stringify(body, null, 2) + '\n');
        return;
      }
      const text = traces.map((t, i) => (traces.length > 1 ? `outcome ${i + 1} of ${traces.length} (probability ${+t.probability.toFixed(6)}):\n` : '') + formatTrace(t));
      process.stdout.write(text.join('\n\n') + '\n');
    });
}
