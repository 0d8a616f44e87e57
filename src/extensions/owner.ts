/** `-m owner`: the local socket's owner (libxt_owner + xt_owner). Only for locally made packets. */
import type { MatchExtension, PrintContext } from './types';
import { ExtensionError } from './types';
import { parseUint } from './util';

export interface IdRange {
  min: number;
  max: number;
  invert: boolean;
}

export interface OwnerInfo {
  socketExists?: { invert: boolean };
  uid?: IdRange;
  gid?: IdRange;
  supplGroups?: { invert: boolean };
}

/** A name the host knows (`daemon`), as getpwnam/getgrnam would resolve it. */
function byName(text: string, names: Map<string, string> | undefined): string | undefined {
  if (!names || /^\d/.test(text)) return undefined;
  for (const [id, n] of names) if (n === text) return id;
  return undefined;
}

function parseIdRange(raw: string, what: string, invert: boolean, names?: Map<string, string>): IdRange {
  const option = what === 'UID' ? '--uid-owner' : '--gid-owner';
  const text = byName(raw, names) ?? raw;
  const m = /^([^-]+)(?:-(.+))?$/.exec(text);
  if (!m || !/^\d/.test(m[1])) throw new ExtensionError(`owner: Bad value for "${option}" option: "${raw}"`);
  const min = parseUint(m[1], 0, 0xfffffffe, `owner ${what}`);
  const max = m[2] === undefined ? min : parseUint(m[2], 0, 0xfffffffe, `owner ${what}`);
  if (min > max) throw new ExtensionError(`owner: Bad ${what} range "${text}"`);
  return { min, max, invert };
}

const saveId = (label: string, r?: IdRange) =>
  !r ? '' : `${r.invert ? ' !' : ''} ${label} ${r.min === r.max ? r.min : `${r.min}-${r.max}`}`;

function listId(label: string, r: IdRange | undefined, names: Map<string, string> | undefined, ctx: PrintContext): string {
  if (!r) return '';
  let v = r.min === r.max ? String(r.min) : `${r.min}-${r.max}`;
  if (r.min === r.max && !ctx.numeric && names?.has(v)) v = names.get(v)!;
  return `${r.invert ? ' !' : ''} ${label} ${v}`;
}

const inRange = (r: IdRange | undefined, v: number) => !r || ((v >= r.min && v <= r.max) !== r.invert);

export const owner: MatchExtension<OwnerInfo> = {
  kind: 'match',
  name: 'owner',
  hooks: ['OUTPUT', 'POSTROUTING'],
  options: [
    { name: 'uid-owner', args: 1, invert: true },
    { name: 'gid-owner', args: 1, invert: true },
    { name: 'socket-exists', args: 0, invert: true },
    { name: 'suppl-groups', args: 0, invert: true },
  ],
  parse(opts, ctx) {
    const info: OwnerInfo = {};
    for (const o of opts) {
      try {
        if (o.name === 'uid-owner') info.uid = parseIdRange(o.args[0], 'UID', o.invert, ctx.names?.users);
        else if (o.name === 'gid-owner') info.gid = parseIdRange(o.args[0], 'GID', o.invert, ctx.names?.groups);
        else if (o.name === 'socket-exists') info.socketExists = { invert: o.invert };
        else info.supplGroups = { invert: o.invert };
      } catch (e) {
        if (e instanceof ExtensionError) e.token ??= o.token;
        throw e;
      }
    }
    if (opts.length === 0) throw new ExtensionError('owner: At least one of --uid-owner, --gid-owner or --socket-exists is required');
    if (info.supplGroups && !info.gid)
      throw new ExtensionError('owner: --suppl-groups requires --gid-owner', opts.find((o) => o.name === 'suppl-groups')?.token);
    return info;
  },
  save: (i) =>
    (i.socketExists ? `${i.socketExists.invert ? ' !' : ''} --socket-exists` : '') +
    saveId('--uid-owner', i.uid) +
    saveId('--gid-owner', i.gid) +
    (i.supplGroups ? `${i.supplGroups.invert ? ' !' : ''} --suppl-groups` : ''),
  list: (i, ctx) =>
    (i.socketExists ? `${i.socketExists.invert ? ' !' : ''} owner socket exists` : '') +
    listId('owner UID match', i.uid, ctx.names?.users, ctx) +
    listId('owner GID match', i.gid, ctx.names?.groups, ctx) +
    (i.supplGroups ? `${i.supplGroups.invert ? ' !' : ''} incl. suppl. groups` : ''),
  match(i, p) {
    const s = p.socket;
    if (!s) return false;
    if (i.socketExists?.invert) return false;
    if (!inRange(i.uid, s.uid)) return false;
    if (i.gid) {
      const hit = (g: number) => g >= i.gid!.min && g <= i.gid!.max;
      const any = hit(s.gid) || (!!i.supplGroups && s.supplGroups.some(hit));
      if (any === i.gid.invert) return false;
    }
    return true;
  },
};
