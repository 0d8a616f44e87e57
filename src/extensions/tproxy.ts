/** `-j TPROXY` (libxt_TPROXY revision 1 + xt_TPROXY): hand a packet to a local socket unchanged. */
import { formatIP, parseIP } from '../model/addr';
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { hex, onlyOnce, parseMarkOpt, parsePort, xmark } from './util';

export interface TproxyInfo {
  port: number;
  /** 0 (`0.0.0.0`/`::`) means the address of the interface the packet came in on. */
  addr: bigint;
  markValue: number;
  markMask: number;
}

/**
 * `--on-port`: a service name, or a number that iptables stores in 16 bits without a range check,
 * so `70000` becomes 4464 (iptables-save of both backends shows `--on-port 4464`).
 */
function onPort(text: string, token: number): number {
  if (/^\d+$/.test(text) && Number(text) <= 0xffffffff) return Number(text) & 0xffff;
  try {
    return parsePort(text);
  } catch {
    throw new ExtensionError(`Port "${text}" does not resolve to anything.`, token);
  }
}

export const TPROXY: TargetExtension<TproxyInfo> = {
  kind: 'target',
  name: 'TPROXY',
  // xt_TPROXY is registered for mangle PREROUTING only (mangle INPUT and filter refuse it)
  tables: ['mangle'],
  hooks: ['PREROUTING'],
  options: [
    { name: 'on-port', args: 1 },
    { name: 'on-ip', args: 1 },
    { name: 'tproxy-mark', args: 1 },
  ],
  parse(opts, ctx) {
    onlyOnce(opts, 'TPROXY');
    const info: TproxyInfo = { port: -1, addr: 0n, markValue: 0, markMask: 0 };
    for (const o of opts) {
      if (o.name === 'on-port') info.port = onPort(o.args[0], o.token);
      else if (o.name === 'on-ip') {
        const ip = parseIP(o.args[0], ctx.family);
        if (!ip) throw new ExtensionError(`TPROXY: bad value for option "--on-ip" ("${o.args[0]}")`, o.token);
        info.addr = ip.value;
      } else {
        const m = parseMarkOpt(o, 'TPROXY', true);
        info.markValue = m.value;
        info.markMask = m.mask;
      }
    }
    if (info.port < 0) throw new ExtensionError('TPROXY: option "--on-port" must be specified');
    // tproxy_tg_check: both backends refuse it without `-p tcp` or `-p udp`
    const p = ctx.protocol;
    if (!p || p.invert || (p.value !== 'tcp' && p.value !== 'udp'))
      throw new ExtensionError('TPROXY: Can be used only with -p tcp or -p udp');
    return info;
  },
  // revision 1 saves every field, defaults included
  save: (i, ctx) => ` --on-port ${i.port} --on-ip ${formatIP(i.addr, ctx.family)} --tproxy-mark ${hex(i.markValue)}/${hex(i.markMask)}`,
  // -L writes the address and port with a bare colon, also for IPv6 (`TPROXY redirect ::1:4140`)
  list: (i, ctx) => ` TPROXY redirect ${formatIP(i.addr, ctx.family)}:${i.port} mark ${hex(i.markValue)}/${hex(i.markMask)}`,
  target(i, p, ctx) {
    // a zero port keeps the packet's destination port (tproxy_tg4: `tgi->lport ? tgi->lport : hp->dest`)
    const found = ctx.tproxy(i.addr === 0n ? undefined : i.addr, i.port || p.dport);
    if (!found) return { verdict: 'drop' };
    p.mark = xmark(p.mark, i.markValue, i.markMask);
    return { verdict: 'accept' };
  },
};
