/**
 * Capture a live host (this one or a named network namespace): iptables-save of v4 and v6 from both
 * backends, addresses, routes, listening sockets with their uid (`ss -ltunpe`) and the forwarding
 * sysctls, as one JSON document that `podtables trace --snapshot` reads back.
 */
import { hostToText, hostFromText, type HostText } from '../model/host';
import { run, type RunResult } from './exec';

/** A captured host with its rulesets. */
export interface Snapshot {
  host: HostText;
  rules: { ipv4?: string; ipv6?: string };
  /** Which backend each family's rules were read from. */
  backend: { ipv4?: 'legacy' | 'nft'; ipv6?: 'legacy' | 'nft' };
  warnings: string[];
}

const inNs = (ns: string | undefined, cmd: string, args: string[]): Promise<RunResult> =>
  ns ? run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs: 30_000 }) : run(cmd, args, { timeoutMs: 30_000 });

/** iptables-save output without its `#` lines; empty when the backend holds no tables. */
async function saveOf(ns: string | undefined, bin: string): Promise<string> {
  const r = await inNs(ns, bin, []).catch(() => ({ code: 127, stdout: '', stderr: '' }));
  if (r.code !== 0) return '';
  return r.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n').trim();
}

/** Whether saved text holds any rule or non-default policy (empty tables do not count). */
const holdsRules = (t: string) => /^-A |^:\S+ DROP/m.test(t);

interface IpAddr { ifname: string; flags?: string[]; operstate?: string; addr_info?: { family: string; local: string; prefixlen: number }[] }
interface IpRoute { dst: string; gateway?: string; dev?: string; prefsrc?: string; type?: string }

/** Parse `ss -H -ltunpe` lines into sockets (uid is printed only when not 0). */
export function parseSs(text: string): HostText['sockets'] {
  const out: NonNullable<HostText['sockets']> = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || (f[0] !== 'tcp' && f[0] !== 'udp')) continue;
    const local = f[4];
    const i = local.lastIndexOf(':');
    let addr = local.slice(0, i).replace(/^\[|\]$/g, '').replace(/%.*$/, '');
    const v6only = /v6only:1/.test(line);
    if (addr === '*') addr = '::';
    const port = Number(local.slice(i + 1));
    const uid = Number(/\buid:(\d+)/.exec(line)?.[1] ?? 0);
    const process = /users:\(\("([^"]+)"/.exec(line)?.[1];
    if (!Number.isFinite(port)) continue;
    out.push({ proto: f[0], addr, port, uid, ...(process ? { process } : {}), ...(v6only ? { v6only } : {}) });
  }
  return out;
}

/** Capture the host `ns` (or this one when undefined). */
export async function snapshot(ns?: string): Promise<Snapshot> {
  const warnings: string[] = [];
  const rules: Snapshot['rules'] = {};
  const backend: Snapshot['backend'] = {};
  for (const [fam, pre] of [['ipv4', 'iptables'], ['ipv6', 'ip6tables']] as const) {
    const legacy = await saveOf(ns, `${pre}-legacy-save`);
    const nft = await saveOf(ns, `${pre}-nft-save`);
    if (holdsRules(legacy) && holdsRules(nft))
      warnings.push(`${fam}: both iptables-legacy and iptables-nft hold rules; the kernel runs both, the snapshot keeps the nft ones (compare with ${pre}-legacy-save)`);
    const pick = holdsRules(nft) || !holdsRules(legacy) ? 'nft' : 'legacy';
    const text = pick === 'nft' ? nft : legacy;
    if (text) {
      rules[fam] = text + '\n';
      backend[fam] = pick;
    }
  }
  const addrs = JSON.parse((await inNs(ns, 'ip', ['-j', 'addr', 'show'])).stdout || '[]') as IpAddr[];
  const interfaces = addrs.map((a) => ({
    name: a.ifname,
    up: (a.flags ?? []).includes('UP'),
    addresses: (a.addr_info ?? []).filter((x) => x.family === 'inet' || x.family === 'inet6').map((x) => `${x.local}/${x.prefixlen}`),
  }));
  const routes: NonNullable<HostText['routes']> = [];
  for (const fam of ['-4', '-6']) {
    const rs = JSON.parse((await inNs(ns, 'ip', [fam, '-j', 'route', 'show'])).stdout || '[]') as IpRoute[];
    for (const r of rs) {
      // connected routes are derived from the addresses; keep the others (default, via gateways)
      if (!r.dev || (r.type && r.type !== 'unicast') || (!r.gateway && r.dst !== 'default')) continue;
      const dst = r.dst === 'default' ? (fam === '-6' ? '::/0' : 'default') : r.dst;
      routes.push({ dst, dev: r.dev, ...(r.gateway ? { via: r.gateway } : {}), ...(r.prefsrc ? { src: r.prefsrc } : {}) });
    }
  }
  const ss = await inNs(ns, 'ss', ['-H', '-ltunpe']);
  const sysctl = await inNs(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding']);
  const [f4, f6] = sysctl.stdout.trim().split('\n');
  const text: HostText = { name: ns ?? 'host', interfaces, routes, forwarding: { ipv4: f4 === '1', ipv6: f6 === '1' }, sockets: parseSs(ss.stdout) };
  // validate through the same schema trace uses, so a snapshot always reads back
  return { host: hostToText(hostFromText(text)), rules, backend, warnings };
}
