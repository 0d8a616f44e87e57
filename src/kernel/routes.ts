/**
 * What istio-iptables sets up besides rules: the policy routing TPROXY needs (packets carrying the
 * mark are looked up in their own table, whose default route delivers locally through lo), and
 * the IPv6 inbound passthrough address ::6 on lo.
 */
import type { Family } from '../model/addr';
import { runIn } from './backend';

/** What to set up: the mark and the table, per family. */
export interface TproxyRoute {
  netns?: string;
  family: Family;
  mark: number;
  table: number;
}

async function ip(r: TproxyRoute, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runIn(r.netns, 'ip', [r.family === 'ipv6' ? '-6' : '-4', ...args], { timeoutMs: 30_000 });
}

const hasRule = (out: string, r: TproxyRoute) =>
  out.split('\n').some((l) => new RegExp(`fwmark 0x${r.mark.toString(16)}\\b.*lookup ${r.table}\\b`).test(l));

/** Add the rule and the route unless they are there; returns what was done. */
export async function ensureTproxyRoute(r: TproxyRoute): Promise<string[]> {
  const done: string[] = [];
  const rules = await ip(r, ['rule', 'show']);
  if (rules.code !== 0) throw new Error(`ip rule show: ${rules.stderr.trim()}`);
  if (!hasRule(rules.stdout, r)) {
    const a = await ip(r, ['rule', 'add', 'fwmark', String(r.mark), 'lookup', String(r.table)]);
    if (a.code !== 0) throw new Error(`ip rule add fwmark ${r.mark} lookup ${r.table}: ${a.stderr.trim()}`);
    done.push(`ip ${r.family === 'ipv6' ? '-6 ' : ''}rule add fwmark ${r.mark} lookup ${r.table}`);
  }
  const routes = await ip(r, ['route', 'show', 'table', String(r.table)]);
  if (!/^local default dev lo\b/m.test(routes.stdout)) {
    const a = await ip(r, ['route', 'replace', 'local', 'default', 'dev', 'lo', 'table', String(r.table)]);
    if (a.code !== 0) throw new Error(`ip route add local default dev lo table ${r.table}: ${a.stderr.trim()}`);
    done.push(`ip ${r.family === 'ipv6' ? '-6 ' : ''}route add local default dev lo table ${r.table}`);
  }
  return done;
}

/** Remove the rule and the table's local default route; quiet when they are gone. */
export async function removeTproxyRoute(r: TproxyRoute): Promise<string[]> {
  const done: string[] = [];
  const rules = await ip(r, ['rule', 'show']);
  if (hasRule(rules.stdout, r)) {
    await ip(r, ['rule', 'del', 'fwmark', String(r.mark), 'lookup', String(r.table)]);
    done.push(`ip rule del fwmark ${r.mark} lookup ${r.table}`);
  }
  const del = await ip(r, ['route', 'del', 'local', 'default', 'dev', 'lo', 'table', String(r.table)]);
  if (del.code === 0) done.push(`ip route del local default dev lo table ${r.table}`);
  return done;
}

/**
 * Envoy relays inbound connections from 127.0.0.6 and ::6, which ISTIO_OUTPUT lets through. Any
 * 127/8 address is local already, but IPv6 gives lo ::1/128 alone, so istio-iptables adds ::6/128
 * to lo when IPv6 is on (`ip -6 addr add ::6/128 dev lo`); so does `init istio --dual-stack`.
 */
const PASSTHROUGH6 = '::6/128';

const hasPassthrough = async (netns: string | undefined) =>
  /\binet6 ::6\/128\b/.test((await runIn(netns, 'ip', ['-6', 'addr', 'show', 'dev', 'lo'], { timeoutMs: 30_000 })).stdout);

/** Add ::6/128 to lo unless it is there; returns what was done. */
export async function ensurePassthroughAddress(netns: string | undefined): Promise<string[]> {
  if (await hasPassthrough(netns)) return [];
  const a = await runIn(netns, 'ip', ['-6', 'addr', 'add', PASSTHROUGH6, 'dev', 'lo'], { timeoutMs: 30_000 });
  if (a.code !== 0) throw new Error(`ip -6 addr add ${PASSTHROUGH6} dev lo: ${a.stderr.trim()}`);
  return [`ip -6 addr add ${PASSTHROUGH6} dev lo`];
}

/** Remove ::6/128 from lo; quiet when it is gone. */
export async function removePassthroughAddress(netns: string | undefined): Promise<string[]> {
  if (!(await hasPassthrough(netns))) return [];
  await runIn(netns, 'ip', ['-6', 'addr', 'del', PASSTHROUGH6, 'dev', 'lo'], { timeoutMs: 30_000 });
  return [`ip -6 addr del ${PASSTHROUGH6} dev lo`];
}
