/** `-j TCPMSS` (libxt_TCPMSS + xt_TCPMSS): rewrite the MSS option of SYN segments; not terminal. */
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { onlyOnce, parseUintOpt } from './util';

export interface TcpmssInfo {
  /** `--set-mss` value, or `'pmtu'` for `--clamp-mss-to-pmtu`. */
  mss: number | 'pmtu';
}

export const TCPMSS: TargetExtension<TcpmssInfo> = {
  kind: 'target',
  name: 'TCPMSS',
  // tcpmss_tg4_check refuses rules that are not `-p tcp` (both backends)
  protocol: 'tcp',
  // xt_TCPMSS's checkentry: path-MTU clamping needs the route, known only from FORWARD on
  hooksFor: (i) => (i.mss === 'pmtu' ? ['FORWARD', 'OUTPUT', 'POSTROUTING'] : undefined),
  options: [
    { name: 'set-mss', args: 1 },
    { name: 'clamp-mss-to-pmtu', args: 0 },
  ],
  parse(opts, ctx) {
    // the last of the two wins: `--clamp-mss-to-pmtu --set-mss 1400` saves as `--set-mss 1400`
    onlyOnce(opts, 'TCPMSS');
    let mss: TcpmssInfo['mss'] | undefined;
    // the MSS must leave room for the IP and TCP headers: 0-65515 for IPv4, 0-65495 for IPv6
    const max = ctx.family === 'ipv4' ? 65535 - 20 : 65535 - 40;
    for (const o of opts) mss = o.name === 'clamp-mss-to-pmtu' ? 'pmtu' : parseUintOpt(o, 'TCPMSS', 0, max);
    if (mss === undefined) throw new ExtensionError('TCPMSS target: At least one parameter is required');
    return { mss };
  },
  save: (i) => (i.mss === 'pmtu' ? ' --clamp-mss-to-pmtu' : ` --set-mss ${i.mss}`),
  list: (i) => (i.mss === 'pmtu' ? ' TCPMSS clamp to PMTU' : ` TCPMSS set ${i.mss}`),
  target(i, p, ctx) {
    if (p.protocol === 6 && p.tcpFlags & 0x02)
      ctx.note(i.mss === 'pmtu' ? 'TCPMSS: MSS clamped to the route MTU minus headers' : `TCPMSS: MSS lowered to ${i.mss} if larger`);
    return { verdict: 'continue' };
  },
};
