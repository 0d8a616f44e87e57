/** `-m limit`: a token bucket per rule (libxt_limit + xt_limit). */
import type { EvalContext, MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce, nowMs, xtUint } from './util';

/** The kernel keeps rates as the period between packets in 1/10000 s (XT_LIMIT_SCALE). */
export const LIMIT_SCALE = 10000;
/** `-m limit` alone means 3/hour, burst 5. */
export const LIMIT_DEFAULT_AVG = (LIMIT_SCALE * 3600) / 3;
export const LIMIT_DEFAULT_BURST = 5;

export interface LimitInfo {
  /** Period between packets, in 1/10000 s. */
  avg: number;
  burst: number;
}

/** Units in the order print_rate tries them, with their length in 1/10000 s. */
const UNITS: [string, number][] = [
  ['day', LIMIT_SCALE * 86400],
  ['hour', LIMIT_SCALE * 3600],
  ['min', LIMIT_SCALE * 60],
  ['sec', LIMIT_SCALE],
];

/**
 * `N[/unit]` as parse_rate reads it: N by atoi, the unit any prefix of second/minute/hour/day
 * (case-insensitive), seconds by default. `10001/sec` is "too fast": the period rounds to zero.
 */
export function parseRate(text: string): number {
  const bad = () => new ExtensionError(`bad rate "${text}"'`);
  const slash = text.indexOf('/');
  let mult = 1;
  if (slash >= 0) {
    const unit = text.slice(slash + 1).toLowerCase();
    const full = ['second', 'minute', 'hour', 'day'].find((u) => unit.length > 0 && u.startsWith(unit));
    if (!full) throw bad();
    mult = { second: 1, minute: 60, hour: 3600, day: 86400 }[full]!;
  }
  // atoi: optional sign and leading digits; a negative count wraps to a huge unsigned one
  const m = /^\s*([+-]?)(\d*)/.exec(text)!;
  const n = Number(m[2] || '0');
  if (n === 0) throw bad();
  const avg = m[1] === '-' ? 0 : Math.floor((LIMIT_SCALE * mult) / n);
  if (avg === 0) throw new ExtensionError(`Rate too fast "${text}"`);
  return avg;
}

/** A period as print_rate prints it: the largest unit that still gives a whole-enough count. */
export function formatRate(avg: number): string {
  let i = 1;
  for (; i < UNITS.length; i++) {
    const mult = UNITS[i][1];
    if (avg > mult || Math.floor(mult / avg) < mult % avg) break;
  }
  const [name, mult] = UNITS[i - 1];
  return `${Math.floor(mult / avg)}/${name}`;
}

interface Bucket {
  credit: number;
  prev: number;
}

export const limit: MatchExtension<LimitInfo> = {
  kind: 'match',
  name: 'limit',
  options: [
    { name: 'limit', args: 1 },
    { name: 'limit-burst', args: 1 },
  ],
  parse(opts) {
    const info: LimitInfo = { avg: LIMIT_DEFAULT_AVG, burst: LIMIT_DEFAULT_BURST };
    eachOnce(opts, 'limit', (o) => {
      if (o.name === 'limit') info.avg = parseRate(o.args[0]);
      else info.burst = xtUint(o, 'limit', 0, 10000);
    });
    // xt_limit's checkentry refuses a zero burst and a period × burst that wraps 32 bits
    // (`--limit 1/day` with burst 5); iptables-legacy fails at commit, while iptables-nft turns
    // the rule into a native nft limit and keeps it. podtables follows the kernel match.
    if (info.burst === 0 || (info.avg * info.burst) % 2 ** 32 < info.avg)
      throw new ExtensionError(`limit: Overflow, try lower: ${info.avg}/${info.burst}`, opts[0]?.token);
    return info;
  },
  save: (i) => ` --limit ${formatRate(i.avg)}` + (i.burst !== LIMIT_DEFAULT_BURST ? ` --limit-burst ${i.burst}` : ''),
  list: (i) => ` limit: avg ${formatRate(i.avg)} burst ${i.burst}`,
  /**
   * xt_limit's limit_mt: the bucket starts full (burst packets), refills at one packet's cost
   * per period, and a packet passes when a whole cost is there to spend.
   */
  match(i, _p, ctx: EvalContext) {
    const now = nowMs(ctx);
    const cap = i.avg * i.burst;
    const b = ctx.state<Bucket>(i, () => ({ credit: cap, prev: now }));
    // 10000 credit units per second: 10 per millisecond
    b.credit = Math.min(cap, b.credit + Math.max(0, now - b.prev) * (LIMIT_SCALE / 1000));
    b.prev = now;
    if (b.credit >= i.avg) {
      b.credit -= i.avg;
      return true;
    }
    return false;
  },
};
