/**
 * The kernel's own trace of real packets: two namespaces joined by a veth pair (A 10.99.0.1 on
 * veth0, B 10.99.0.2), the ruleset under test in A with `-j TRACE` rules first in raw, and
 * `xtables-monitor --trace` (nft backend) in A. Probes are real connections sent by a tiny Node
 * sender, as a given uid (setpriv), from A (local origin) or from B (arriving on veth0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, deleteNetns, inNetns, inNetnsOk, uniqueName } from '../../src/kernel/netns';
import { run, runOk } from '../../src/kernel/exec';
import { hostFromText, type Host } from '../../src/model/host';
import type { Step } from '../../src/netfilter/trace';

/** One probe: a packet sent for real. */
export interface Probe {
  proto: 'tcp' | 'udp' | 'icmp';
  /** a: made in A by `uid`; b: sent from B, arriving in A on veth0. */
  from: 'a' | 'b';
  uid: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** TCP only: trace the first data packet of an established connection instead of the SYN. */
  established?: boolean;
}

/** A step as xtables-monitor prints it: `table:chain:rule:0xH:VERDICT[:TARGET]  RULE`. */
export interface KernelStep {
  table: string;
  chain: string;
  kind: string;
  verdict: string;
  target?: string;
  text?: string;
}

/** The packet as one table saw it on entry (a PACKET line, placed by the TRACE line after it). */
export interface KernelEntry {
  table: string;
  hook: string;
  /** `SRC:SPORT>DST:DPORT MARK`, the fields podtables models. */
  packet: string;
}

/** What the kernel traced for one probe. */
export interface KernelTrace {
  steps: KernelStep[];
  entries: KernelEntry[];
}

/** The host A as the engine models it. */
export function hostA(): Host {
  return hostFromText({
    name: 'a',
    interfaces: [{ name: 'lo', addresses: ['127.0.0.1/8', '::1/128'] }, { name: 'veth0', addresses: ['10.99.0.1/24'] }],
    routes: [],
  });
}

/** The lines that make the kernel trace our probes only (sports 30000-39999, ICMP echo requests). */
export const TRACE_RULES = [
  '-A PREROUTING -p tcp -m tcp --sport 30000:39999 -j TRACE',
  '-A PREROUTING -p udp -m udp --sport 30000:39999 -j TRACE',
  '-A PREROUTING -p icmp -j TRACE',
  '-A OUTPUT -p tcp -m tcp --sport 30000:39999 -j TRACE',
  '-A OUTPUT -p udp -m udp --sport 30000:39999 -j TRACE',
  '-A OUTPUT -p icmp -j TRACE',
];

/** Insert the TRACE rules at the top of the raw table of a save text (which must have one). */
export function withTraceRules(save: string): string {
  return save.replace(/(\*raw\n(?::[^\n]*\n)*)/, (m) => m + TRACE_RULES.join('\n') + '\n');
}

const SENDER = `
import net from 'node:net';
import dgram from 'node:dgram';
const probes = JSON.parse(process.argv[2]);
for (const p of probes) {
  await new Promise((res) => {
    let done = false;
    const end = (f) => { if (!done) { done = true; try { f(); } catch {} res(); } };
    if (p.proto === 'tcp') {
      const s = net.connect({ host: p.dst, port: p.dport, localAddress: p.src, localPort: p.sport });
      s.on('connect', () => {
        if (!p.established) return end(() => s.destroy());
        s.write('x');
        setTimeout(() => end(() => s.destroy()), 60);
      });
      s.on('error', () => end(() => s.destroy()));
      setTimeout(() => end(() => s.destroy()), 120);
    } else {
      const s = dgram.createSocket('udp4');
      s.on('error', () => end(() => s.close()));
      s.bind(p.sport, p.src, () => s.send('x', p.dport, p.dst, () => end(() => s.close())));
    }
  });
}
`;

/** TCP sinks on the probe ports in both namespaces (established probes need a peer); they exit after 30 minutes. */
const SINK = `
import net from 'node:net';
for (const port of [80, 8080, 53, 4143]) net.createServer((c) => { c.on('data', () => {}); c.on('error', () => {}); }).listen({ port, host: '0.0.0.0' }).on('error', () => {});
setTimeout(() => process.exit(0), 30 * 60_000);
`;

/** Namespaces, monitor and sender of a differential run; `close` deletes everything. */
export class KernelTracer {
  private monitor?: ChildProcess;
  private out = '';
  private sinks: ChildProcess[] = [];
  private sinkPath = join(tmpdir(), `ptf-sink-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`);
  private senderPath = join(tmpdir(), `ptf-sender-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`);

  private constructor(readonly a: string, readonly b: string) {}

  /** Create A and B, the veth pair, TCP sinks on the probe ports (in A too unless `sinks: false`) and the monitor. */
  static async open(opts: { sinks?: boolean } = {}): Promise<KernelTracer> {
    const t = new KernelTracer(uniqueName('pta'), uniqueName('ptb'));
    await createNetns(t.a);
    try {
      await createNetns(t.b);
      const va = `pv${process.pid.toString(36)}${Math.random().toString(36).slice(2, 5)}`.slice(0, 12);
      await runOk('ip', ['link', 'add', va, 'netns', t.a, 'type', 'veth', 'peer', 'name', 'veth1', 'netns', t.b]);
      await inNetnsOk(t.a, 'ip', ['link', 'set', va, 'name', 'veth0']);
      await inNetnsOk(t.a, 'ip', ['addr', 'add', '10.99.0.1/24', 'dev', 'veth0']);
      await inNetnsOk(t.a, 'ip', ['link', 'set', 'veth0', 'up']);
      await inNetnsOk(t.b, 'ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'veth1']);
      await inNetnsOk(t.b, 'ip', ['link', 'set', 'veth1', 'up']);
      writeFileSync(t.senderPath, SENDER);
      // wait until neighbour discovery is done, so that the first probe is not delayed
      await inNetns(t.b, 'ping', ['-c', '1', '-W', '1', '10.99.0.1']);
      await inNetns(t.a, 'ping', ['-c', '1', '-W', '1', '10.99.0.2']);
      writeFileSync(t.sinkPath, SINK);
      for (const ns of opts.sinks === false ? [t.b] : [t.a, t.b]) {
        const sink = spawn('ip', ['netns', 'exec', ns, process.execPath, t.sinkPath], { stdio: 'ignore' });
        t.sinks.push(sink);
      }
      await t.startMonitor();
    } catch (e) {
      await t.close();
      throw e;
    }
    return t;
  }

  private monitorDied?: string;

  /** (Re)start xtables-monitor; a monitor that exits (it gives up when netlink overruns) is noticed by probe(). */
  private async startMonitor(): Promise<void> {
    const m = spawn('ip', ['netns', 'exec', this.a, 'xtables-monitor', '--trace'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    m.stdout!.on('data', (d) => (this.out += d.toString()));
    m.stderr!.on('data', (d) => (err += d.toString()));
    m.on('exit', (code, signal) => {
      if (this.monitor === m) this.monitorDied = `xtables-monitor exited (${code ?? signal}): ${err.trim()}`;
    });
    this.monitor = m;
    this.monitorDied = undefined;
    await new Promise((r) => setTimeout(r, 400));
  }

  /** Load a ruleset into A (iptables-nft-restore); resolves with its error text or null. */
  async load(save: string): Promise<string | null> {
    // iptables-restore keeps the tables its input does not name: start from an empty ruleset
    await inNetnsOk(this.a, 'nft', ['flush', 'ruleset']);
    const r = await inNetns(this.a, 'iptables-nft-restore', [], { input: withTraceRules(save), timeoutMs: 30_000 });
    await inNetns(this.a, 'conntrack', ['-F']);
    return r.code === 0 ? null : r.stderr.trim();
  }

  /**
   * Send the probes and return the kernel's steps of each, in probe order. When the monitor dies
   * meanwhile (netlink overran its buffer: ENOBUFS, which a busy machine causes by starving the
   * monitor), send them again after a pause, half at a time, up to `retries` times.
   */
  async probe(probes: Probe[], retries = 6): Promise<KernelTrace[]> {
    if (this.monitorDied) await this.startMonitor();
    const start = this.out.length;
    const groups = new Map<string, Probe[]>();
    for (const p of probes) {
      if (p.proto === 'icmp') {
        await inNetns(p.from === 'a' ? this.a : this.b, 'ping', ['-c', '1', '-W', '1', '-I', p.src, p.dst], { timeoutMs: 5000 });
        continue;
      }
      const k = `${p.from}/${p.uid}`;
      groups.set(k, [...(groups.get(k) ?? []), p]);
    }
    for (const [k, ps] of groups) {
      const [from, uid] = k.split('/');
      const ns = from === 'a' ? this.a : this.b;
      const r = await run('ip', ['netns', 'exec', ns, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, this.senderPath, JSON.stringify(ps)], { timeoutMs: 30_000 });
      if (r.code !== 0) throw new Error(`sender failed: ${r.stderr}`);
    }
    // the monitor prints asynchronously: wait until its output has been quiet for a moment
    let len = -1;
    for (let i = 0; i < 40 && len !== this.out.length; i++) {
      len = this.out.length;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (this.monitorDied) {
      if (retries <= 0) throw new Error(this.monitorDied);
      await new Promise((r) => setTimeout(r, 300));
      await inNetns(this.a, 'conntrack', ['-F']);
      // fresh source ports (still in the traced range), so that no socket of the lost run is in the way;
      // changed in place, so that the caller's packets are the ones sent
      for (const p of probes) if (p.sport) p.sport = 30000 + ((p.sport - 30000 + 5000) % 10000);
      if (probes.length < 2) return this.probe(probes, retries - 1);
      const half = probes.length >> 1;
      return [...(await this.probe(probes.slice(0, half), retries - 1)), ...(await this.probe(probes.slice(half), retries - 1))];
    }
    if (process.env.TRACE_RAW) appendFileSync(process.env.TRACE_RAW, `--- ${JSON.stringify(probes.map((p) => p.sport))}\n${this.out.slice(start)}`);
    return splitByProbe(this.out.slice(start), probes);
  }

  /** Stop the monitor and delete both namespaces. */
  async close(): Promise<void> {
    const m = this.monitor;
    this.monitor = undefined;
    m?.kill('SIGTERM');
    for (const s of this.sinks) s.kill('SIGTERM');
    rmSync(this.senderPath, { force: true });
    rmSync(this.sinkPath, { force: true });
    await deleteNetns(this.a).catch(() => {});
    await deleteNetns(this.b).catch(() => {});
  }
}

/** Parse monitor text into steps per probe: groups of one packet id, first packet of each flow only. */
export function splitByProbe(text: string, probes: Probe[]): KernelTrace[] {
  const byId = new Map<string, { packet: string; steps: KernelStep[]; entries: KernelEntry[]; pending?: string }>();
  const order: string[] = [];
  const current = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(PACKET|TRACE): \d+ ([0-9a-f]+) (.*)$/.exec(line);
    if (!m) continue;
    const [, kind, traceId, rest] = m;
    // the kernel's trace id is a hash that a later packet may reuse (a FIN after its SYN): a packet
    // is the trace id with the IP ID, and TRACE lines belong to the last PACKET line of their trace id
    if (kind === 'PACKET') {
      const key = `${traceId}/${/ ID=(\d+)/.exec(rest)?.[1] ?? ''}`;
      current.set(traceId, key);
      if (!byId.has(key)) {
        byId.set(key, { packet: rest, steps: [], entries: [] });
        order.push(key);
      }
      byId.get(key)!.pending = packetFields(rest);
      continue;
    }
    const g = byId.get(current.get(traceId) ?? '');
    if (!g) continue;
    if (g.pending !== undefined) {
      const tc = /^(\w+):([^:\s]+):/.exec(rest);
      if (tc) g.entries.push({ table: tc[1], hook: tc[2], packet: g.pending });
      g.pending = undefined;
    }
    const t = /^(\w+):([^:\s]+):(rule|policy|return):(\S*)(?:\s+(.*))?$/.exec(rest.trimEnd());
    if (!t) continue;
    const [, table, chain, k, tail, textRaw] = t;
    const parts = tail.split(':');
    let verdict: string, target: string | undefined;
    if (k === 'rule') {
      verdict = parts[1] ?? '';
      target = parts[2];
    } else verdict = parts[0];
    if (verdict === '0xfffffffb') verdict = 'RETURN';
    const text = textRaw?.replace(/^-[46] -t \w+ /, '');
    if (text?.endsWith('-j TRACE') && TRACE_RULES.some((r) => text === r)) continue;
    g.steps.push({ table, chain, kind: k, verdict, ...(target ? { target } : {}), ...(text ? { text } : {}) });
  }
  // the monitor prints no ICMP type: the echo request is the first ICMP packet from the probe's source, and its IP ID follows it through lo
  const ipId = (pk: string) => / ID=(\d+)/.exec(pk)?.[1];
  return probes.map((p) => {
    const steps: KernelStep[] = [];
    const entries: KernelEntry[] = [];
    // LEN=84: ping's default echo request; ICMP errors (port unreachable from the peer) are longer or shorter
    const first = order.find((id) => !byId.get(id)!.packet.includes('SPORT=') && byId.get(id)!.packet.includes(`SRC=${p.src} `) && byId.get(id)!.packet.includes(' LEN=84 '));
    const icmpId = first ? ipId(byId.get(first)!.packet) : undefined;
    let dataId: string | undefined;
    for (const id of order) {
      const g = byId.get(id)!;
      const pk = g.packet;
      if (p.proto === 'icmp') {
        if (pk.includes('SPORT=') || !pk.includes(' LEN=84 ') || icmpId === undefined || ipId(pk) !== icmpId) continue;
      } else {
        if (!pk.includes(`SPORT=${p.sport} `)) continue;
        if (p.proto === 'tcp' && !p.established && (!/\bSYN\b/.test(pk) || /\bACK\b/.test(pk))) continue;
        if (p.established && !/\bPSH\b/.test(pk)) continue;
        // a dropped data packet is retransmitted (new IP ID): only the first transmission is the probe
        if (p.established && ipId(pk) !== (dataId ??= ipId(pk))) continue;
      }
      steps.push(...g.steps);
      entries.push(...g.entries);
    }
    return { steps, entries };
  });
}

/** The modelled fields of a PACKET line, in the form `entryText` prints ours. */
function packetFields(line: string): string {
  const f = (k: string) => new RegExp(`\\b${k}=(\\S+)`).exec(line)?.[1];
  return `${f('SRC')}:${f('SPORT') ?? 0}>${f('DST')}:${f('DPORT') ?? 0} ${f('MARK') ?? '0x0'}`;
}

/** Our table entries in the form of KernelEntry. */
export function entryText(e: { hook: string; table: string; packet: { src: string; sport: number; dst: string; dport: number; mark: string } }): KernelEntry {
  return { table: e.table, hook: e.hook, packet: `${e.packet.src}:${e.packet.sport}>${e.packet.dst}:${e.packet.dport} ${e.packet.mark}` };
}

/** A readable diff of two entry lists (the packet each table saw), or null when they agree. */
export function diffEntries(ours: KernelEntry[], kernel: KernelEntry[]): string | null {
  const f = (e: KernelEntry) => `${e.table}:${e.hook} ${e.packet}`;
  const a = ours.map(f), b = kernel.map(f);
  if (a.length === b.length && a.every((x, i) => x === b[i])) return null;
  return `packets, podtables:\n  ${a.join('\n  ')}\npackets, kernel:\n  ${b.join('\n  ')}`;
}

/** Our steps in the kernel's vocabulary: implicit returns are not printed by xtables-monitor. */
export function comparable(steps: Step[]): KernelStep[] {
  return steps
    .filter((s) => s.kind !== 'return')
    .map((s) => ({
      // xt_REJECT sends its error and returns NF_DROP: the kernel's trace says DROP where ours says REJECT
      table: s.table, chain: s.chain, kind: s.kind, verdict: s.verdict === 'REJECT' ? 'DROP' : s.verdict,
      ...(s.verdict === 'JUMP' || s.verdict === 'GOTO' ? { target: s.target } : {}),
      ...(s.text ? { text: s.text } : {}),
    }));
}

/** A readable diff of two step lists, or null when they agree. */
export function diffSteps(ours: KernelStep[], kernel: KernelStep[]): string | null {
  const f = (s: KernelStep) => `${s.table}:${s.chain}:${s.kind}:${s.verdict}${s.target ? ':' + s.target : ''}${s.text ? '  ' + s.text : ''}`;
  const a = ours.map(f), b = kernel.map(f);
  if (a.length === b.length && a.every((x, i) => x === b[i])) return null;
  return `podtables:\n  ${a.join('\n  ')}\nkernel:\n  ${b.join('\n  ')}`;
}

const LISTENER = (proxyModule: string) => `
import net from 'node:net';
import { originalDst } from ${JSON.stringify(proxyModule)};
const binds = JSON.parse(process.argv[2]);
let ready = 0;
for (const { host, port } of binds)
  net.createServer((c) => {
    const o = originalDst(c);
    process.stdout.write(JSON.stringify({ port, peerPort: c.remotePort, orig: typeof o === 'string' ? null : { addr: o.address, port: o.port } }) + '\\n');
    c.destroy();
  }).listen({ host, port }, () => { if (++ready === binds.length) process.stdout.write('ready\\n'); });
setTimeout(() => process.exit(0), Number(process.argv[3]));
`;

/** What a real listener saw: the port that accepted and the SO_ORIGINAL_DST it read, by peer port. */
export interface Accepted {
  port: number;
  peerPort: number;
  orig: { addr: string; port: number } | null;
}

/**
 * Run listeners in A as `uid` (reading SO_ORIGINAL_DST through src/kernel/proxy.ts) while `fn`
 * sends traffic; resolves with what they accepted.
 */
export async function withListeners(t: KernelTracer, uid: number, binds: { host: string; port: number }[], fn: () => Promise<void>): Promise<Accepted[]> {
  const path = join(tmpdir(), `ptf-listener-${process.pid}-${Math.random().toString(36).slice(2)}.mts`);
  writeFileSync(path, LISTENER(join(process.cwd(), 'src/kernel/proxy.ts')));
  const child = spawn('ip', ['netns', 'exec', t.a, 'setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '--import', 'tsx', path, JSON.stringify(binds), '20000'], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d) => (out += d.toString()));
  child.stderr!.on('data', (d) => (err += d.toString()));
  try {
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 100));
    if (!out.includes('ready')) throw new Error(`listener did not start: ${err}`);
    await fn();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    child.kill('SIGTERM');
    rmSync(path, { force: true });
  }
  return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Accepted);
}
