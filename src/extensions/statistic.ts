/**
 * `-m statistic` (libxt_statistic + the kernel's statistic_mt): random sampling or every nth
 * packet. The kernel keeps the probability as a 31-bit fraction, so what iptables prints back is
 * that fraction, not the input: 0.1 saves as 0.10000000009 and 0.33333333349 survives unchanged.
 */
import type { MatchExtension } from './types';
import { ExtensionError } from './types';
import { lastOpt, pin, xtUint } from './util';

export type StatisticInfo =
  | { mode: 'random'; invert: boolean; /** lround(p * 2^31), as the kernel stores it. */ probability: number }
  | { mode: 'nth'; invert: boolean; /** n - 1, as the kernel stores it. */ every: number; packet: number };

const SCALE = 0x80000000;
/** The nth options, which random mode refuses. */
const OTHERS = ['every', 'packet'];

/** strtod over the whole text (decimal forms only); NaN when it is not a number. */
function strtod(text: string): number {
  return /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
}

const printed = new Map<number, string>();

/**
 * `%.11f` of raw / 2^31, exact and rounded half to even as glibc's printf rounds. Remembered by
 * value: rulesets repeat a few probabilities (kube-proxy's 1/n) over thousands of rules.
 */
export function formatProbability(raw: number): string {
  let s = printed.get(raw);
  if (s === undefined) {
    if (printed.size >= 4096) printed.clear();
    printed.set(raw, (s = exactProbability(raw)));
  }
  return s;
}

function exactProbability(raw: number): string {
  const num = BigInt(raw) * 10n ** 11n;
  const den = BigInt(SCALE);
  let q = num / den;
  const twice = (num % den) * 2n;
  if (twice > den || (twice === den && q % 2n === 1n)) q++;
  const s = q.toString().padStart(12, '0');
  return `${s.slice(0, -11)}.${s.slice(-11)}`;
}

const labels = new WeakMap<StatisticInfo, string>();
/** The label of a rule's random branch, made once per rule rather than once per packet. */
function branchLabel(i: StatisticInfo & { mode: 'random' }): string {
  let l = labels.get(i);
  if (l === undefined) labels.set(i, (l = `statistic random ${formatProbability(i.probability)}`));
  return l;
}

export const statistic: MatchExtension<StatisticInfo> = {
  kind: 'match',
  name: 'statistic',
  options: [
    { name: 'mode', args: 1 },
    { name: 'probability', args: 1, invert: true },
    { name: 'every', args: 1, invert: true },
    { name: 'packet', args: 1 },
  ],
  parse(opts) {
    let mode: 'random' | 'nth' | undefined;
    let invert = false;
    let probability: number | undefined;
    let every: number | undefined;
    let packet: number | undefined;
    // the options in input order, as xtables_option_parse walks them (eachOnce, without a closure
    // per rule: dumps have a statistic match on most Service rules)
    for (let k = 0; k < opts.length; k++) {
      const o = opts[k];
      for (let j = 0; j < k; j++)
        if (opts[j].name === o.name) throw new ExtensionError(`statistic: option "--${o.name}" can only be used once.`, o.token);
      try {
        if (o.invert) invert = true;
        if (o.name === 'mode') {
          if (o.args[0] !== 'random' && o.args[0] !== 'nth') throw new ExtensionError(`Bad mode "${o.args[0]}"`);
          mode = o.args[0];
        } else if (o.name === 'probability') {
          const p = strtod(o.args[0]);
          if (!(p >= 0 && p <= 1)) throw new ExtensionError(`statistic: bad value for option "--probability", or out of range (0-1).`);
          probability = Math.round(p * SCALE);
        } else if (o.name === 'every') every = xtUint(o, 'statistic', 1, 0xffffffff) - 1;
        else packet = xtUint(o, 'statistic', 0, 0xffffffff);
      } catch (e) {
        throw pin(e, o);
      }
    }
    // statistic_check runs before the option table's own checks, with random as the default mode
    if ((mode ?? 'random') === 'random' && probability === undefined)
      throw new ExtensionError('--probability must be specified when using random mode');
    if (mode === 'nth' && every === undefined && packet === undefined)
      throw new ExtensionError('--every and --packet must be specified when using nth mode');
    // every and probability share one field of the kernel's union, so this check sees either
    if ((packet ?? 0) > (every ?? probability ?? 0)) throw new ExtensionError('the --packet p must be 0 <= p <= n-1');
    if (!mode) throw new ExtensionError('statistic: option "--mode" must be specified');
    if (probability !== undefined)
      for (const other of OTHERS)
        if (lastOpt(opts, other))
          throw new ExtensionError(`statistic: option "--probability" cannot be used together with "--${other}".`);
    if (every !== undefined && packet === undefined) throw new ExtensionError('statistic: option "--every" also requires "--packet".');
    if (packet !== undefined && every === undefined) throw new ExtensionError('statistic: option "--packet" also requires "--every".');
    if (mode === 'random') return { mode, invert, probability: probability! };
    return { mode, invert, every: every!, packet: packet! };
  },
  save: (i) =>
    i.mode === 'random'
      ? ` --mode random${i.invert ? ' !' : ''} --probability ${formatProbability(i.probability)}`
      : ` --mode nth${i.invert ? ' !' : ''} --every ${i.every + 1} --packet ${i.packet}`,
  // -L leaves out `packet 0`; the save form always has it
  list: (i) =>
    i.mode === 'random'
      ? ` statistic mode random${i.invert ? ' !' : ''} probability ${formatProbability(i.probability)}`
      : ` statistic mode nth ${i.invert ? '! ' : ''}every ${i.every + 1}${i.packet ? ` packet ${i.packet}` : ''}`,
  match(i, _p, ctx) {
    if (i.mode === 'random') {
      // statistic_mt: (prandom_u32() & 0x7fffffff) < probability
      const hit = ctx.chance(i.probability / SCALE, branchLabel(i));
      return hit !== i.invert;
    }
    // the kernel's per-rule counter: the 0-based packet index modulo n equals --packet
    // (rule counters over ping on lo: --every 3 --packet 0 took packets 1, 4, 7; --packet 2 took 3, 6)
    const st = ctx.state(i, () => ({ count: i.every }));
    st.count = st.count === i.every ? 0 : st.count + 1;
    return (st.count === i.packet) !== i.invert;
  },
};
