/** `-j LOG` (libxt_LOG + nf_log_syslog): a kernel log line per packet; not terminal. */
import { formatIP } from '../model/addr';
import { protocolName } from '../model/protocols';
import type { Packet } from '../model/packet';
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { onlyOnce, parseUint, saveString } from './util';

/** Syslog level names libxt_LOG accepts (case-sensitive: `Info` and `warn` are refused). */
const LEVELS: Record<string, number> = {
  alert: 1, crit: 2, debug: 7, emerg: 0, error: 3, info: 6, notice: 5, panic: 0, warning: 4,
};

/** Level names `iptables -L` (without -n) prints, by number. */
const LIST_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];

/** Flag bits as the kernel stores them; -L -n prints their sum in decimal (`LOG flags 47`). */
const FLAGS: [string, number][] = [
  ['log-tcp-sequence', 0x01],
  ['log-tcp-options', 0x02],
  ['log-ip-options', 0x04],
  ['log-uid', 0x08],
  ['log-macdecode', 0x20],
];

/** The kernel keeps 29 characters of a prefix (char prefix[30]); iptables cuts longer ones. */
export const LOG_PREFIX_MAX = 29;

export interface LogInfo {
  level: number;
  flags: number;
  prefix?: string;
}

/** Parse a log level: a syslog name or a number 0-7 (strtoul base 0, so `0x3` is 3). */
function parseLevel(text: string): number {
  if (text in LEVELS) return LEVELS[text];
  try {
    return parseUint(text, 0, 7, 'log level');
  } catch {
    throw new ExtensionError(`log level "${text}" unknown`);
  }
}

export const LOG: TargetExtension<LogInfo> = {
  kind: 'target',
  name: 'LOG',
  options: [
    { name: 'log-level', args: 1 },
    { name: 'log-prefix', args: 1 },
    ...FLAGS.map(([name]) => ({ name, args: 0 })),
  ],
  parse(opts) {
    onlyOnce(opts, 'LOG');
    const info: LogInfo = { level: 4, flags: 0 };
    for (const o of opts) {
      if (o.name === 'log-level') {
        try {
          info.level = parseLevel(o.args[0]);
        } catch (e) {
          throw new ExtensionError((e as Error).message, o.token);
        }
      } else if (o.name === 'log-prefix') {
        if (o.args[0] === '') throw new ExtensionError('Argument must have a minimum length of 1 characters', o.token);
        info.prefix = o.args[0].slice(0, LOG_PREFIX_MAX);
      } else info.flags |= FLAGS.find(([n]) => n === o.name)![1];
    }
    return info;
  },
  save(i) {
    let s = i.prefix !== undefined ? ` --log-prefix${saveString(i.prefix)}` : '';
    if (i.level !== 4) s += ` --log-level ${i.level}`;
    for (const [name, bit] of FLAGS) if (i.flags & bit) s += ` --${name}`;
    return s;
  },
  // -L -n prints the raw numbers; -L prints syslog's short level names and a word per flag.
  // Either way the prefix is quoted but not escaped (`prefix "a"b"`).
  list(i, ctx) {
    let s = ' LOG';
    if (ctx.numeric) s += ` flags ${i.flags} level ${i.level}`;
    else {
      s += ` level ${LIST_LEVELS[i.level]}`;
      for (const [name, bit] of FLAGS) if (i.flags & bit) s += ` ${name.slice(4)}`;
    }
    return s + (i.prefix !== undefined ? ` prefix "${i.prefix}"` : '');
  },
  target(i, p, ctx) {
    ctx.note(`LOG ${logLine(i, p)}`);
    return { verdict: 'continue' };
  },
};

/** The start of the line nf_log_syslog writes for a packet (`PREFIX IN=… OUT=… SRC=… DST=… PROTO=…`). */
export function logLine(i: LogInfo, p: Packet): string {
  const proto = p.protocol === 6 ? 'TCP' : p.protocol === 17 ? 'UDP' : p.protocol === 1 ? 'ICMP' : p.protocol === 58 ? 'ICMPv6' : protocolName(p.protocol).toUpperCase();
  let s = `${i.prefix ?? ''}IN=${p.inInterface ?? ''} OUT=${p.outInterface ?? ''} SRC=${formatIP(p.src, p.family)} DST=${formatIP(p.dst, p.family)} PROTO=${proto}`;
  if (p.protocol === 6 || p.protocol === 17) s += ` SPT=${p.sport} DPT=${p.dport}`;
  if (p.protocol === 1 || p.protocol === 58) s += ` TYPE=${p.icmpType} CODE=${p.icmpCode}`;
  if (i.flags & 0x08 && p.socket) s += ` UID=${p.socket.uid} GID=${p.socket.gid}`;
  if (p.mark) s += ` MARK=0x${p.mark.toString(16)}`;
  return s;
}
