/** `-j TRACE` (libxt_TRACE + xt_TRACE): mark the packet for rule-by-rule kernel tracing; not terminal. */
import type { TargetExtension } from './types';

export const TRACE: TargetExtension<Record<string, never>> = {
  kind: 'target',
  name: 'TRACE',
  // xt_TRACE is registered for raw only: iptables-legacy refuses it in mangle and filter.
  // iptables-nft accepts it anywhere (it becomes `meta nftrace set 1`), so raw is the common ground.
  tables: ['raw'],
  options: [],
  parse: () => ({}),
  save: () => '',
  list: () => '',
  target(_i, _p, ctx) {
    ctx.note('TRACE: the kernel traces this packet from here on');
    return { verdict: 'continue' };
  },
};
