/**
 * `-m connmark` (libxt_connmark + xt_connmark) and `-j CONNMARK` (libxt_CONNMARK + xt_CONNMARK):
 * the mark kept on the conntrack entry. Valid in every table and hook.
 */
import type { MatchExtension, TargetExtension } from './types';
import { ExtensionError } from './types';
import { markOperation } from './mark';
import { bang, exclusive, formatMarkMask, hex, listXmark, onlyOnce, parseMarkOpt, parseUintOpt, xmark } from './util';

export interface ConnmarkMatchInfo {
  value: number;
  mask: number;
  invert: boolean;
}

export const connmark: MatchExtension<ConnmarkMatchInfo> = {
  kind: 'match',
  name: 'connmark',
  options: [{ name: 'mark', args: 1, invert: true }],
  parse(opts) {
    onlyOnce(opts, 'connmark');
    const o = opts[0];
    if (!o) throw new ExtensionError('connmark: option "--mark" must be specified');
    return { ...parseMarkOpt(o, 'connmark', true), invert: o.invert };
  },
  save: (i) => `${bang(i.invert)} --mark ${formatMarkMask(i.value, i.mask)}`,
  // connmark_print leaves the invert slot empty, hence two spaces before a plain value
  list: (i) => ` connmark match ${i.invert ? '!' : ''} ${formatMarkMask(i.value, i.mask)}`,
  // an untracked packet has no entry, and the kernel's match fails for it
  match: (i, p) => p.ct.state !== 'UNTRACKED' && (((p.ct.mark & i.mask) >>> 0) === ((i.value & i.mask) >>> 0)) !== i.invert,
};

/** CONNMARK as the kernel stores it (revision 2, which adds the shift). */
export interface ConnmarkTargetInfo {
  mode: 'set' | 'save' | 'restore';
  /** set: `ctmark = (ctmark & ~ctmask) ^ ctmark` value. */
  ctmark: number;
  ctmask: number;
  nfmask: number;
  /** `--left-shift-mark`/`--right-shift-mark`: the new mark is shifted before it is stored. */
  shift?: { dir: 'left' | 'right'; bits: number };
}

/** libxt_CONNMARK's option table order: it names colliding options in this order. */
const ORDER = [
  'set-xmark', 'set-mark', 'and-mark', 'or-mark', 'xor-mark', 'save-mark', 'restore-mark', 'ctmask', 'nfmask', 'mask',
  'left-shift-mark', 'right-shift-mark',
] as const;
const MODES = ORDER.slice(0, 7);

export const CONNMARK: TargetExtension<ConnmarkTargetInfo> = {
  kind: 'target',
  name: 'CONNMARK',
  options: ORDER.map((name) => ({ name, args: name === 'save-mark' || name === 'restore-mark' ? 0 : 1 })),
  parse(opts) {
    onlyOnce(opts, 'CONNMARK');
    exclusive(opts, 'CONNMARK', ORDER, MODES);
    exclusive(opts, 'CONNMARK', ORDER, ['nfmask', 'mask']);
    exclusive(opts, 'CONNMARK', ORDER, ['ctmask', 'mask']);
    // options apply in the order given: `--set-mark 1 --ctmask 3` is 0x1/0x3, but
    // `--ctmask 3 --set-mark 1` is 0x1/0xffffffff (iptables-save of both)
    const info: ConnmarkTargetInfo = { mode: 'set', ctmark: 0, ctmask: 0xffffffff, nfmask: 0xffffffff };
    let mode = false;
    for (const o of opts) {
      if (o.name === 'save-mark' || o.name === 'restore-mark') {
        info.mode = o.name === 'save-mark' ? 'save' : 'restore';
        mode = true;
      } else if (o.name === 'left-shift-mark' || o.name === 'right-shift-mark') {
        // the last shift given wins, direction and all; libxt_CONNMARK takes 0-32, the kernel's
        // checkentry then refuses 32 (both backends)
        const bits = parseUintOpt(o, 'CONNMARK', 0, 32);
        if (bits === 32) throw new ExtensionError('CONNMARK: a shift of 32 bits is refused by the kernel', o.token);
        info.shift = bits ? { dir: o.name === 'left-shift-mark' ? 'left' : 'right', bits } : undefined;
        if (!info.shift) delete info.shift;
      } else if (o.name === 'mask' || o.name === 'ctmask' || o.name === 'nfmask') {
        const v = parseMarkOpt(o, 'CONNMARK', false).value;
        if (o.name !== 'nfmask') info.ctmask = v;
        if (o.name !== 'ctmask') info.nfmask = v;
      } else {
        const m = parseMarkOpt(o, 'CONNMARK', o.name === 'set-xmark' || o.name === 'set-mark');
        const r = markOperation(o.name, m.value, m.mask);
        info.ctmark = r.value;
        info.ctmask = r.mask;
        mode = true;
      }
    }
    if (!mode) throw new ExtensionError('CONNMARK target: No operation specified');
    return info;
  },
  save(i) {
    const shift = i.shift ? ` --${i.shift.dir}-shift-mark ${i.shift.bits}` : '';
    if (i.mode === 'set') return ` --set-xmark ${hex(i.ctmark)}/${hex(i.ctmask)}${shift}`;
    return ` --${i.mode}-mark --nfmask ${hex(i.nfmask)} --ctmask ${hex(i.ctmask)}${shift}`;
  },
  list: (i) => listOp(i) + (i.shift ? ` ${i.shift.dir}-shift-mark ${i.shift.bits}` : ''),
  target(i, p) {
    // xt_CONNMARK connmark_tg_shift; nothing to do without a conntrack entry. The shift applies to
    // the whole new mark in set mode and to the copied bits otherwise: a namespace run showed
    // `--set-mark 1 --left-shift-mark 8` giving ctmark 0x100, `--save-mark --left-shift-mark 4` of
    // mark 0x12 giving 0x120, and `--restore-mark --right-shift-mark 4 --nfmask 0xff` of ctmark
    // 0x120 over mark 0xf000 giving 0xf012.
    if (p.ct.state === 'UNTRACKED') return { verdict: 'continue' };
    const shift = (v: number) => (!i.shift ? v : i.shift.dir === 'left' ? v << i.shift.bits : v >>> i.shift.bits) >>> 0;
    if (i.mode === 'set') p.ct.mark = shift(xmark(p.ct.mark, i.ctmark, i.ctmask));
    else if (i.mode === 'save') p.ct.mark = ((p.ct.mark & ~i.ctmask) ^ shift((p.mark & i.nfmask) >>> 0)) >>> 0;
    else p.mark = ((p.mark & ~i.nfmask) ^ shift((p.ct.mark & i.ctmask) >>> 0)) >>> 0;
    return { verdict: 'continue' };
  },
};

/** The -L words for the operation (connmark_tg_print_v2 without the shift). */
function listOp(i: ConnmarkTargetInfo): string {
  if (i.mode === 'set') return listXmark('CONNMARK', i.ctmark, i.ctmask);
  if (i.nfmask === i.ctmask) return ` CONNMARK ${i.mode}${i.nfmask === 0xffffffff ? '' : ` mask ${hex(i.nfmask)}`}`;
  // the mask that is read from is printed plainly, the one that is kept with a `~`
  return i.mode === 'save'
    ? ` CONNMARK save nfmask ${hex(i.nfmask)} ctmask ~${hex(i.ctmask)}`
    : ` CONNMARK restore ctmask ${hex(i.ctmask)} nfmask ~${hex(i.nfmask)}`;
}
