/**
 * `-m mark` (libxt_mark + xt_mark) and `-j MARK` (libxt_MARK + xt_MARK): the packet's fwmark.
 * Both are valid in every table and hook (checked in all five tables of a namespace).
 */
import type { MatchExtension, TargetExtension } from './types';
import { ExtensionError } from './types';
import { bang, exclusive, formatMarkMask, hex, listXmark, onlyOnce, parseMarkOpt, xmark } from './util';

export interface MarkMatchInfo {
  value: number;
  mask: number;
  invert: boolean;
}

export const mark: MatchExtension<MarkMatchInfo> = {
  kind: 'match',
  name: 'mark',
  options: [{ name: 'mark', args: 1, invert: true }],
  parse(opts) {
    onlyOnce(opts, 'mark');
    const o = opts[0];
    if (!o) throw new ExtensionError('mark: option "--mark" must be specified');
    return { ...parseMarkOpt(o, 'mark', true), invert: o.invert };
  },
  save: (i) => `${bang(i.invert)} --mark ${formatMarkMask(i.value, i.mask)}`,
  list: (i) => ` mark match${bang(i.invert)} ${formatMarkMask(i.value, i.mask)}`,
  match: (i, p) => (((p.mark & i.mask) >>> 0) === ((i.value & i.mask) >>> 0)) !== i.invert,
};

/** MARK as the kernel stores it (revision 2): every option becomes `mark = (mark & ~mask) ^ value`. */
export interface MarkTargetInfo {
  value: number;
  mask: number;
}

/** The option table order, which also orders the pair iptables names when two collide. */
const MARK_OPTIONS = ['set-xmark', 'set-mark', 'and-mark', 'or-mark', 'xor-mark'] as const;

/**
 * Turn one of MARK's or CONNMARK's set options into the stored value/mask pair, as libxt_MARK's
 * parser does: `--set-mark 1` is `0x1/0xffffffff`, `--set-mark 1/0xf0` widens the mask by the
 * value (`0x1/0xf1`), `--and-mark 0xf` is `0x0/0xfffffff0`, `--or-mark 3` is `0x3/0x3` and
 * `--xor-mark 4` is `0x4/0x0` (all read back from iptables-save).
 */
export function markOperation(name: string, value: number, mask: number): { value: number; mask: number } {
  switch (name) {
    case 'set-xmark': return { value, mask };
    case 'set-mark': return { value, mask: (value | mask) >>> 0 };
    case 'and-mark': return { value: 0, mask: ~value >>> 0 };
    case 'or-mark': return { value, mask: value };
    default: return { value, mask: 0 };
  }
}

export const MARK: TargetExtension<MarkTargetInfo> = {
  kind: 'target',
  name: 'MARK',
  options: MARK_OPTIONS.map((name) => ({ name, args: 1 })),
  parse(opts) {
    onlyOnce(opts, 'MARK');
    exclusive(opts, 'MARK', MARK_OPTIONS, MARK_OPTIONS);
    const o = opts[0];
    if (!o) throw new ExtensionError('MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required');
    const { value, mask } = parseMarkOpt(o, 'MARK', o.name === 'set-xmark' || o.name === 'set-mark');
    return markOperation(o.name, value, mask);
  },
  save: (i) => ` --set-xmark ${hex(i.value)}/${hex(i.mask)}`,
  list: (i) => listXmark('MARK', i.value, i.mask),
  target(i, p) {
    p.mark = xmark(p.mark, i.value, i.mask);
    return { verdict: 'continue' };
  },
};
