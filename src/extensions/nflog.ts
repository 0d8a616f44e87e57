/** `-j NFLOG` (libxt_NFLOG + xt_NFLOG): hand a copy to nfnetlink_log group N; not terminal. */
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { exclusive, onlyOnce, parseUintOpt, saveString } from './util';

/** xt_nflog_info keeps a 64-byte prefix; iptables-legacy cuts longer ones (iptables-nft keeps them). */
export const NFLOG_PREFIX_MAX = 63;

export interface NflogInfo {
  group: number;
  prefix?: string;
  /** `--nflog-size`: bytes copied to userspace (0 is a real value, so it is optional). */
  size?: number;
  /** `--nflog-range`: the old, never working copy length; saved back as given by iptables-legacy. */
  range?: number;
  threshold: number;
}

const ORDER = ['nflog-group', 'nflog-prefix', 'nflog-range', 'nflog-size', 'nflog-threshold'];

export const NFLOG: TargetExtension<NflogInfo> = {
  kind: 'target',
  name: 'NFLOG',
  options: ORDER.map((name) => ({ name, args: 1 })),
  parse(opts) {
    onlyOnce(opts, 'NFLOG');
    exclusive(opts, 'NFLOG', ORDER, ['nflog-range', 'nflog-size']);
    const info: NflogInfo = { group: 0, threshold: 0 };
    for (const o of opts) {
      if (o.name === 'nflog-group') info.group = parseUintOpt(o, 'NFLOG', 0, 65535);
      else if (o.name === 'nflog-prefix') {
        if (o.args[0] === '') throw new ExtensionError('Argument must have a minimum length of 1 characters', o.token);
        info.prefix = o.args[0].slice(0, NFLOG_PREFIX_MAX);
      } else if (o.name === 'nflog-range') info.range = parseUintOpt(o, 'NFLOG', 0, 0xffffffff);
      else if (o.name === 'nflog-size') info.size = parseUintOpt(o, 'NFLOG', 0, 0xffffffff);
      else info.threshold = parseUintOpt(o, 'NFLOG', 0, 65535);
    }
    // a zero range is the same as none: the kernel struct cannot tell them apart
    if (info.range === 0) delete info.range;
    return info;
  },
  save: (i) => words(i, ' --'),
  list: (i) => words(i, ' '),
  target(i, _p, ctx) {
    ctx.note(`NFLOG group ${i.group}${i.prefix !== undefined ? ` prefix ${JSON.stringify(i.prefix)}` : ''}`);
    return { verdict: 'continue' };
  },
};

/** save and -L print the same words, with and without the dashes (nflog_print). */
function words(i: NflogInfo, lead: string): string {
  let s = '';
  if (i.prefix !== undefined) s += `${lead}nflog-prefix${saveString(i.prefix)}`;
  if (i.group) s += `${lead}nflog-group ${i.group}`;
  if (i.range !== undefined) s += `${lead}nflog-range ${i.range}`;
  if (i.size !== undefined) s += `${lead}nflog-size ${i.size}`;
  if (i.threshold) s += `${lead}nflog-threshold ${i.threshold}`;
  return s;
}
