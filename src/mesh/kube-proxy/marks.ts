/** Mark, statistic and reject words in iptables-save's canonical spelling (settled by loading kube-proxy's own words and reading them back). */
import type { Family } from '../../model/addr';

/** `1 << bit` as iptables prints marks: kube-proxy writes `%#08x` (0x004000), iptables-save prints 0x4000. */
export const markOf = (bit: number): string => '0x' + ((1 << bit) >>> 0).toString(16);

/** kube-proxy's probability text for 1/n (`%0.10f`). */
export const kubeProbability = (n: number): string => (1 / n).toFixed(10);

/**
 * What iptables-save prints for a `--probability` argument: libxt_statistic stores
 * lround(p × 2^31) and prints it back divided by 2^31 with `%.11f` (glibc: exact value, ties to even).
 * 0.3333333333 reads back as 0.33333333349.
 */
export function savedProbability(text: string): string {
  const k = BigInt(Math.round(0x80000000 * Number(text)));
  const scaled = k * 10n ** 11n;
  const div = 1n << 31n;
  let q = scaled / div;
  const r = scaled % div;
  if (r * 2n > div || (r * 2n === div && q % 2n === 1n)) q++;
  const s = q.toString().padStart(12, '0');
  return `${s.slice(0, -11)}.${s.slice(-11)}`;
}

const probabilities: string[] = [];

/** `-m statistic --mode random --probability P` for 1/n as iptables-save prints it back (one text per n). */
export function statisticMatch(n: number): string {
  return (probabilities[n] ??= ` -m statistic --mode random --probability ${savedProbability(kubeProbability(n))}`);
}

const encoder = new TextEncoder();
const probabilityBytes: Uint8Array[] = [];

/** statisticMatch(n) as bytes: the rule writer copies them, where a string this long goes through the encoder. */
export function statisticBytes(n: number): Uint8Array {
  return (probabilityBytes[n] ??= encoder.encode(statisticMatch(n)));
}

/** `-j REJECT` with its default reply, as iptables-save spells it per family. */
export const rejectTarget = (f: Family): string => ` -j REJECT --reject-with ${f === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`;

/** The recent match's implicit `--mask … --rsource`, as iptables-save prints them. */
export const recentTail = (f: Family): string => ` --mask ${f === 'ipv4' ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'} --rsource`;
