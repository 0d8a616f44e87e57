/** `-j NFQUEUE` (libxt_NFQUEUE revision 3 + xt_NFQUEUE): hand the packet to a userspace queue. */
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { exclusive, onlyOnce, parseUintOpt } from './util';

export interface NfqueueInfo {
  /** First queue number. */
  queue: number;
  /** How many queues `--queue-balance` spreads over (1 without it). */
  total: number;
  bypass: boolean;
  cpuFanout: boolean;
}

const ORDER = ['queue-num', 'queue-balance', 'queue-bypass', 'queue-cpu-fanout'];

/** `--queue-balance L:H`, with libxt_NFQUEUE's words for a bad one. */
function parseBalance(text: string, token: number): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) throw new ExtensionError(`Bad range "${text}"`, token);
  const lo = Number(m[1]), hi = Number(m[2]);
  if (lo >= hi) throw new ExtensionError(`${lo} should be less than ${hi}`, token);
  return [lo, hi];
}

export const NFQUEUE: TargetExtension<NfqueueInfo> = {
  kind: 'target',
  name: 'NFQUEUE',
  // `--fail-open` belongs to nfnetlink_queue's userspace API, not to iptables 1.8.9: it is refused
  options: ORDER.map((name) => ({ name, args: name === 'queue-num' || name === 'queue-balance' ? 1 : 0 })),
  parse(opts) {
    onlyOnce(opts, 'NFQUEUE');
    exclusive(opts, 'NFQUEUE', ORDER, ['queue-num', 'queue-balance']);
    const info: NfqueueInfo = { queue: 0, total: 1, bypass: false, cpuFanout: false };
    for (const o of opts) {
      if (o.name === 'queue-num') info.queue = parseUintOpt(o, 'NFQUEUE', 0, 65535);
      else if (o.name === 'queue-balance') {
        const [lo, hi] = parseBalance(o.args[0], o.token);
        info.queue = lo;
        info.total = hi - lo + 1;
      } else if (o.name === 'queue-bypass') info.bypass = true;
      else info.cpuFanout = true;
    }
    if (info.cpuFanout && !opts.some((o) => o.name === 'queue-balance'))
      throw new ExtensionError('NFQUEUE: option "--queue-cpu-fanout" also requires "--queue-balance".');
    return info;
  },
  save: (i) => words(i, ' --queue-num ', ' --queue-balance ', ' --queue-bypass', ' --queue-cpu-fanout'),
  list: (i) => ' NFQUEUE' + words(i, ' num ', ' balance ', ' bypass', ' cpu-fanout'),
  target(i, _p, ctx) {
    // the kernel spreads flows over the range by a hash (or by CPU); the engine sees the first queue
    if (i.total > 1) ctx.note(`NFQUEUE: one of queues ${i.queue}-${i.queue + i.total - 1}, chosen by flow hash`);
    return { verdict: 'queue', queue: i.queue, bypass: i.bypass };
  },
};

function words(i: NfqueueInfo, num: string, balance: string, bypass: string, fanout: string): string {
  let s = i.total > 1 ? `${balance}${i.queue}:${i.queue + i.total - 1}` : `${num}${i.queue}`;
  if (i.bypass) s += bypass;
  if (i.cpuFanout) s += fanout;
  return s;
}
