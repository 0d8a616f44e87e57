/**
 * `-m recent`: named lists of recently seen addresses (libxt_recent revision 1 + xt_recent).
 * The lists belong to the network namespace, not to a rule: every rule naming a list shares it.
 */
import { formatIP, parseIP, type Family } from '../model/addr';
import type { EvalContext, MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce, nowMs, xtUint } from './util';

export type RecentOp = 'set' | 'rcheck' | 'update' | 'remove';

export interface RecentInfo {
  op: RecentOp;
  invert: boolean;
  /** 0: no time window. */
  seconds: number;
  reap: boolean;
  /** 0: any one hit. */
  hitcount: number;
  rttl: boolean;
  name: string;
  mask: bigint;
  side: 'source' | 'dest';
}

/** xt_recent's XT_RECENT_NAME_LEN: names are kept in 200 bytes with the terminating NUL. */
export const RECENT_NAME_LEN = 200;
/** xt_recent's ip_pkt_list_tot: time stamps kept per address by default. */
const PKT_LIST_TOT = 20;

const OPS: RecentOp[] = ['set', 'rcheck', 'update', 'remove'];
/** The options table in libxt_recent's order, which is the order fcheck names conflicts in. */
const ORDER = ['set', 'rcheck', 'update', 'remove', 'seconds', 'reap', 'hitcount', 'rttl', 'name', 'rsource', 'rdest', 'mask'];
const EXCL: Record<string, string[]> = {
  set: OPS, rcheck: OPS, update: OPS, remove: OPS, rttl: ['set', 'remove'],
};
const LIST_OP: Record<RecentOp, string> = { set: 'SET', rcheck: 'CHECK', update: 'UPDATE', remove: 'REMOVE' };

/** libxtables' xtables_options_fcheck: walk the table in order; the first conflict or missing companion wins. */
function fcheck(given: Set<string>): void {
  for (const n of ORDER) {
    if (!given.has(n)) continue;
    for (const other of ORDER)
      if (other !== n && EXCL[n]?.includes(other) && given.has(other))
        throw new ExtensionError(`recent: option "--${n}" cannot be used together with "--${other}".`);
    if (n === 'reap' && !given.has('seconds')) throw new ExtensionError('recent: option "--reap" also requires "--seconds".');
  }
}

/** The kernel's xt_check_proc_name and recent_mt_check, which iptables only meets at commit. */
function kernelCheck(i: RecentInfo): void {
  if (i.name === '' || i.name === '.' || i.name === '..' || i.name.includes('/'))
    throw new ExtensionError(`recent: invalid list name "${i.name}" (the kernel refuses it)`);
  if ((i.op === 'set' || i.op === 'remove') && (i.seconds || i.hitcount || i.reap || i.rttl))
    throw new ExtensionError(`recent: --${i.op} takes no --seconds, --hitcount, --reap or --rttl (the kernel refuses it)`);
}

export const recent: MatchExtension<RecentInfo> = {
  kind: 'match',
  name: 'recent',
  options: [
    { name: 'set', args: 0, invert: true },
    { name: 'rcheck', args: 0, invert: true },
    { name: 'update', args: 0, invert: true },
    { name: 'remove', args: 0, invert: true },
    { name: 'seconds', args: 1 },
    { name: 'reap', args: 0 },
    { name: 'hitcount', args: 1 },
    { name: 'rttl', args: 0 },
    { name: 'name', args: 1 },
    { name: 'rsource', args: 0 },
    { name: 'rdest', args: 0 },
    { name: 'mask', args: 1 },
  ],
  parse(opts, ctx) {
    const fam = ctx.family;
    const info: RecentInfo = {
      op: 'set', invert: false, seconds: 0, reap: false, hitcount: 0, rttl: false, name: 'DEFAULT',
      mask: fam === 'ipv4' ? 0xffffffffn : (1n << 128n) - 1n, side: 'source',
    };
    eachOnce(opts, 'recent', (o) => {
      if ((OPS as string[]).includes(o.name)) {
        info.op = o.name as RecentOp;
        info.invert = o.invert;
      } else if (o.name === 'seconds') info.seconds = xtUint(o, 'recent', 1, 0xffffffff);
      else if (o.name === 'hitcount') info.hitcount = xtUint(o, 'recent', 0, 0xffffffff);
      else if (o.name === 'reap') info.reap = true;
      else if (o.name === 'rttl') info.rttl = true;
      // XTTYPE_STRING copies into the 200-byte field and cuts what does not fit, silently
      else if (o.name === 'name') info.name = cutBytes(o.args[0], RECENT_NAME_LEN - 1);
      else if (o.name === 'rsource') info.side = 'source';
      else if (o.name === 'rdest') info.side = 'dest';
      else if (o.name === 'mask') {
        // XTTYPE_HOST: one address of the rule's family, no prefix
        const ip = parseIP(o.args[0], fam);
        if (!ip) throw new ExtensionError(`recent: host/network \`${o.args[0]}' not found for --mask`);
        info.mask = ip.value;
      }
    });
    const given = new Set(opts.map((o) => o.name));
    if (!OPS.some((op) => given.has(op)))
      throw new ExtensionError("recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'");
    try {
      fcheck(given);
      kernelCheck(info);
    } catch (e) {
      if (e instanceof ExtensionError) e.token ??= opts[0]?.token;
      throw e;
    }
    return info;
  },
  save: (i, ctx) =>
    `${i.invert ? ' !' : ''} --${i.op}` +
    (i.seconds ? ` --seconds ${i.seconds | 0}` : '') +
    (i.reap ? ' --reap' : '') +
    (i.hitcount ? ` --hitcount ${i.hitcount | 0}` : '') +
    (i.rttl ? ' --rttl' : '') +
    ` --name ${i.name} --mask ${formatIP(i.mask, ctx.family)} --r${i.side === 'source' ? 'source' : 'dest'}`,
  list: (i, ctx) =>
    `${i.invert ? ' !' : ''} recent: ${LIST_OP[i.op]}` +
    (i.seconds ? ` seconds: ${i.seconds | 0}` : '') +
    (i.reap ? ' reap' : '') +
    (i.hitcount ? ` hit_count: ${i.hitcount | 0}` : '') +
    (i.rttl ? ' TTL-Match' : '') +
    ` name: ${i.name} side: ${i.side} mask: ${formatIP(i.mask, ctx.family)}`,
  /** xt_recent's recent_mt, on a list shared by every rule of the namespace that names it. */
  match(i, p, ctx: EvalContext) {
    const now = nowMs(ctx);
    const table = ctx.state(listKey(i.name), () => new Map<string, Entry>());
    const addr = (i.side === 'dest' ? p.dst : p.src) & i.mask;
    // the TTL as it was before forwarding decremented it
    const ttl = p.ttl + (ctx.hook !== 'INPUT' && ctx.hook !== 'PREROUTING' && !p.socket ? 1 : 0);
    const key = `${p.family}/${addr}`;
    let ret = i.invert;
    let e = table.get(key);
    // recent_entry_lookup: with --rttl an entry counts only when recorded with the same TTL (or none)
    if (e && i.rttl && e.ttl !== ttl && e.ttl !== 0) e = undefined;
    if (!e) {
      if (i.op !== 'set') return ret;
      table.set(key, { stamps: [now], ttl, family: p.family });
      return !ret;
    }
    if (i.op === 'set') ret = !ret;
    else if (i.op === 'remove') {
      table.delete(key);
      ret = !ret;
    } else {
      const since = now - i.seconds * 1000;
      let hits = 0;
      for (const s of e.stamps) {
        if (i.seconds && s < since) continue;
        if (!i.hitcount || ++hits >= i.hitcount) {
          ret = !ret;
          break;
        }
      }
      if (i.reap) e.stamps = e.stamps.filter((s) => s >= since);
    }
    if (i.op === 'set' || (i.op === 'update' && ret)) {
      e.stamps.push(now);
      const keep = Math.max(PKT_LIST_TOT, i.hitcount);
      if (e.stamps.length > keep) e.stamps.splice(0, e.stamps.length - keep);
      e.ttl = ttl;
      table.set(key, e);
    }
    return ret;
  },
};

interface Entry {
  stamps: number[];
  ttl: number;
  family: Family;
}

/** The longest prefix of `text` that fits in `max` UTF-8 bytes. */
function cutBytes(text: string, max: number): string {
  const b = new TextEncoder().encode(text);
  return b.length <= max ? text : new TextDecoder().decode(b.slice(0, max)).replace(/\uFFFD$/, '');
}

/** One state key per list name, so that every rule naming the list sees the same entries. */
const keys = new Map<string, object>();
function listKey(name: string): object {
  let k = keys.get(name);
  if (!k) keys.set(name, (k = { recentList: name }));
  return k;
}
