/**
 * Differential test of the traversal engine against the kernel: random rulesets (raw, mangle, nat,
 * filter; user chains reached by jump and goto; RETURN; the extensions that evaluate packets) ×
 * real packets (arriving on veth0 and made locally as several uids; TCP, UDP, ICMP; the first
 * packet of a flow and the first data packet of an established TCP connection), compared step by
 * step with `xtables-monitor --trace`; ctstate, state, addrtype, icmp, mark, owner and multiport
 * matches and the NAT, MARK and REJECT targets included. TRACE_CASES sets the number of cases (default 300).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needKernel } from '../support/kernel';
import { comparable, diffEntries, diffSteps, entryText, hostA, KernelTracer, type Probe } from '../support/trace';
import { getMatch, getTarget } from '../../src/extensions/index';
import { Engine } from '../../src/netfilter/engine';
import { parsePacketSpec } from '../../src/netfilter/spec';
import { parseRestore } from '../../src/syntax/restore';
import type { Hook, TableName } from '../../src/model/ruleset';

const CASES = Number(process.env.TRACE_CASES ?? 300);

/** A small seeded generator, so that a failing case can be replayed from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
  };
}
type R = ReturnType<typeof rng>;

const CHAINS: Record<string, Hook[]> = { raw: ['PREROUTING', 'OUTPUT'], mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'], nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], filter: ['INPUT', 'FORWARD', 'OUTPUT'] };
const ADDRS = ['10.99.0.1', '10.99.0.2', '127.0.0.1', '10.99.0.0/24', '127.0.0.0/8', '10.0.0.0/8'];
const PORTS = [80, 8080, 53, 4143];
const evaluates = (m: string) => !!getMatch(m)?.match;
const targets = (t: string) => !!getTarget(t)?.target;

/** One rule for a chain; `hook` is set for built-in chains (interfaces, owner, NAT targets depend on it). */
function rule(r: R, table: TableName, chain: string, hook: Hook | undefined, later: string[]): string {
  const w: string[] = [];
  if (r.chance(0.3)) w.push(...(r.chance(0.2) ? ['!'] : []), '-s', r.pick(ADDRS));
  if (r.chance(0.3)) w.push(...(r.chance(0.2) ? ['!'] : []), '-d', r.pick(ADDRS));
  if (hook && ['PREROUTING', 'INPUT', 'FORWARD'].includes(hook) && r.chance(0.25)) w.push(...(r.chance(0.2) ? ['!'] : []), '-i', r.pick(['lo', 'veth0', 've+', 'eth0']));
  if (hook && ['OUTPUT', 'POSTROUTING', 'FORWARD'].includes(hook) && r.chance(0.25)) w.push(...(r.chance(0.2) ? ['!'] : []), '-o', r.pick(['lo', 'veth0', 've+', 'eth0']));
  const proto = r.pick(['tcp', 'tcp', 'udp', 'icmp', '', '']);
  if (proto) w.push(...(r.chance(0.1) ? ['!'] : []), '-p', proto);
  const inverted = w.includes('!') && w[w.indexOf('-p') - 1] === '!';
  if ((proto === 'tcp' || proto === 'udp') && !inverted && r.chance(0.5)) {
    if (r.chance(0.6)) w.push('-m', proto, ...(r.chance(0.2) ? ['!'] : []), '--dport', String(r.pick(PORTS)));
    else w.push('-m', 'multiport', '--dports', `${r.pick(PORTS)},${r.pick(PORTS)}`);
  }
  if (hook && (hook === 'OUTPUT' || hook === 'POSTROUTING') && r.chance(0.3)) w.push('-m', 'owner', ...(r.chance(0.2) ? ['!'] : []), '--uid-owner', r.pick(['0', '1000', '1001', '1000-1001']));
  if (proto === 'icmp' && !inverted && evaluates('icmp') && r.chance(0.3)) w.push('-m', 'icmp', '--icmp-type', r.pick(['echo-request', '0', '3']));
  if (evaluates('conntrack') && r.chance(0.15)) w.push('-m', 'conntrack', ...(r.chance(0.2) ? ['!'] : []), '--ctstate', r.pick(['NEW', 'ESTABLISHED', 'RELATED,ESTABLISHED', 'INVALID', 'NEW,ESTABLISHED']));
  if (evaluates('state') && r.chance(0.05)) w.push('-m', 'state', '--state', r.pick(['NEW', 'ESTABLISHED']));
  if (evaluates('addrtype') && r.chance(0.12)) w.push('-m', 'addrtype', r.pick(['--dst-type', '--src-type']), r.pick(['LOCAL', 'UNICAST', 'LOCAL,UNICAST']));
  if (evaluates('mark') && r.chance(0.15)) w.push('-m', 'mark', '--mark', r.pick(['0x1', '0x1/0x1', '0x0']));
  if (r.chance(0.15)) w.push('-m', 'comment', '--comment', `"case ${r.int(0, 99)}"`);
  // iptables refuses DROP in nat ("The nat table is not intended for filtering")
  const opts: string[][] = [['-j', 'ACCEPT'], ...(table === 'nat' ? [] : [['-j', 'DROP']]), ['-j', 'RETURN'], []];
  for (const c of later) opts.push(['-j', c], ['-g', c]);
  if (table === 'mangle' && targets('MARK')) opts.push(['-j', 'MARK', '--set-xmark', '0x1/0xffffffff']);
  if (table === 'filter' && targets('REJECT') && r.chance(0.3)) opts.push(['-j', 'REJECT']);
  if (table === 'nat' && hook && (hook === 'PREROUTING' || hook === 'OUTPUT') && proto === 'tcp' && !inverted) {
    opts.push(['-j', 'REDIRECT', '--to-ports', String(r.pick(PORTS))]);
    if (targets('DNAT')) opts.push(['-j', 'DNAT', '--to-destination', `${r.pick(['10.99.0.2', '127.0.0.1', '10.99.0.1'])}:${r.pick(PORTS)}`]);
  }
  if (table === 'nat' && hook && (hook === 'POSTROUTING' || hook === 'INPUT') && targets('SNAT')) opts.push(['-j', 'SNAT', '--to-source', '10.99.0.1']);
  if (table === 'nat' && hook === 'POSTROUTING' && targets('MASQUERADE')) opts.push(['-j', 'MASQUERADE']);
  // DROP ends most probes early; keep it rarer so that more of the path is exercised
  let t = r.pick(opts);
  if (t[1] === 'DROP' && r.chance(0.6)) t = ['-j', 'ACCEPT'];
  return [`-A ${chain}`, ...w, ...t].join(' ');
}

/** A random ruleset in save form: every table, some user chains forming a DAG of jumps and gotos. */
function ruleset(r: R): string {
  const out: string[] = [];
  for (const table of ['raw', 'mangle', 'nat', 'filter'] as TableName[]) {
    const user = Array.from({ length: r.int(0, 3) }, (_, i) => `U${i}`);
    out.push(`*${table}`);
    for (const c of CHAINS[table]) out.push(`:${c} ${table !== 'nat' && r.chance(0.15) ? 'DROP' : 'ACCEPT'} [0:0]`);
    for (const c of user) out.push(`:${c} - [0:0]`);
    for (const c of CHAINS[table]) for (let i = r.int(0, 3); i > 0; i--) out.push(rule(r, table, c, c, user));
    // user chains take no interface or owner rules: they may be reached from hooks where those are refused
    user.forEach((c, k) => {
      for (let i = r.int(0, 3); i > 0; i--) out.push(rule(r, table, c, undefined, user.slice(k + 1)));
    });
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/** The probes of one ruleset: arriving and local, three uids, TCP, UDP, ICMP. */
function probes(r: R, base: number): Probe[] {
  const sp = (i: number) => 30000 + ((base * 8 + i) % 10000);
  return [
    { proto: 'tcp', from: 'b', uid: 0, src: '10.99.0.2', sport: sp(0), dst: '10.99.0.1', dport: r.pick(PORTS) },
    { proto: 'udp', from: 'b', uid: 0, src: '10.99.0.2', sport: sp(1), dst: '10.99.0.1', dport: r.pick(PORTS) },
    { proto: 'tcp', from: 'a', uid: 1000, src: '10.99.0.1', sport: sp(2), dst: '10.99.0.2', dport: r.pick(PORTS) },
    { proto: 'tcp', from: 'a', uid: r.pick([0, 1001]), src: '127.0.0.1', sport: sp(3), dst: '127.0.0.1', dport: r.pick(PORTS) },
    { proto: 'udp', from: 'a', uid: 1001, src: '10.99.0.1', sport: sp(4), dst: r.pick(['10.99.0.1', '10.99.0.2']), dport: r.pick(PORTS) },
    { proto: 'tcp', from: 'b', uid: 0, src: '10.99.0.2', sport: sp(5), dst: '10.99.0.1', dport: r.pick(PORTS), established: true },
    { proto: 'tcp', from: 'a', uid: r.pick([1000, 1001]), src: '10.99.0.1', sport: sp(6), dst: r.pick(['10.99.0.2', '10.99.0.1']), dport: r.pick(PORTS), established: true },
    r.chance(0.5)
      ? { proto: 'icmp', from: 'b', uid: 0, src: '10.99.0.2', sport: 0, dst: '10.99.0.1', dport: 0 }
      : { proto: 'icmp', from: 'a', uid: 0, src: '10.99.0.1', sport: 0, dst: r.pick(['10.99.0.2', '10.99.0.1']), dport: 0 },
  ];
}

const specOf = (p: Probe): string => {
  const src = p.proto === 'icmp' ? p.src : `${p.src}:${p.sport}`;
  const dst = p.proto === 'icmp' ? p.dst : `${p.dst}:${p.dport}`;
  return `${p.proto} ${src} -> ${dst} ${p.from === 'b' ? 'in veth0' : `uid ${p.uid}`}${p.established ? ' state established flags ACK,PSH' : ''}`;
};

test(`traces of ${CASES} random rulesets × packets agree with xtables-monitor --trace step by step`, { timeout: 30 * 60_000 }, async (t) => {
  if (!needKernel(t)) return;
  const seed = Number(process.env.TRACE_SEED ?? Date.now() % 100000);
  const tracer = await KernelTracer.open();
  let cases = 0, agree = 0, refused = 0, unseen = 0, established = 0;
  const failures: string[] = [];
  try {
    for (let n = 0; cases < CASES; n++) {
      const r = rng(seed * 1000 + n);
      const text = ruleset(r);
      const parsed = parseRestore(text, { family: 'ipv4' });
      const err = await tracer.load(text);
      const ours = parsed.issues.filter((i) => i.severity === 'error');
      if (err || ours.length) {
        // both must refuse the same rulesets; a disagreement is a failure of its own
        if (!err !== !ours.length) failures.push(`seed ${seed}/${n}: kernel ${err ? `refused: ${err}` : 'loaded'}, podtables ${ours.length ? `refused: ${ours[0].message}` : 'loaded'}\n${text}`);
        refused++;
        continue;
      }
      const ps = probes(r, n);
      const kernel = await tracer.probe(ps);
      ps.forEach((p, i) => {
        // an established probe whose handshake the rules stopped never sends data: nothing to compare
        if (p.established && kernel[i].steps.length === 0) return void unseen++;
        if (p.established) established++;
        cases++;
        const engine = new Engine(hostA(), [parsed.ruleset], { record: true });
        const trace = engine.trace(parsePacketSpec(specOf(p)));
        const d = diffSteps(comparable(trace.steps), kernel[i].steps) ?? diffEntries((trace.entries ?? []).map(entryText), kernel[i].entries);
        if (d === null) agree++;
        else failures.push(`seed ${seed}/${n} ${specOf(p)}\n${d}\nruleset:\n${text}`);
      });
    }
  } finally {
    await tracer.close();
  }
  t.diagnostic(`seed ${seed}: ${agree}/${cases} cases agree (${established} of them established TCP); ${refused} rulesets refused by both; ${unseen} established probes never got past their handshake`);
  if (process.env.TRACE_DUMP) (await import("node:fs")).writeFileSync(process.env.TRACE_DUMP, failures.join("\n\n=====\n"));
  assert.equal(failures.length, 0, `${failures.length} disagreements (of ${cases}); first:\n${failures.slice(0, 2).join('\n\n')}`);
});
