/** `-m ttl` (IPv4 time to live, libipt_ttl + ipt_ttl); `hl.ts` is its IPv6 twin. */
import type { GivenOption, MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce, xtUint } from './util';

/** The kernel's modes: equal, not equal (`! --ttl-eq`), less than, greater than. */
export type TtlMode = 'eq' | 'ne' | 'lt' | 'gt';

export interface TtlInfo {
  mode: TtlMode;
  value: number;
}

const SIGN: Record<TtlMode, string> = { eq: '==', ne: '!=', lt: '<', gt: '>' };

/**
 * Both matches share their shape: `-eq` may be negated; `-lt` and `-gt` exclude every other
 * option while `-eq` excludes none, so fcheck names the later table entry first
 * (`--ttl-lt` … `--ttl-eq`, whichever came first on the line).
 */
export function ttlLike(name: 'ttl' | 'hl', label: 'TTL' | 'HL'): Omit<MatchExtension<TtlInfo>, 'kind' | 'name' | 'family'> {
  const opt = (m: string) => `${name}-${m}`;
  const order = ['eq', 'lt', 'gt'] as const;
  return {
    options: [
      { name: opt('eq'), args: 1, invert: true },
      { name: opt('lt'), args: 1 },
      { name: opt('gt'), args: 1 },
    ],
    parse(opts: GivenOption[]) {
      let info: TtlInfo | undefined;
      eachOnce(opts, name, (o) => {
        const m = o.name.slice(name.length + 1) as 'eq' | 'lt' | 'gt';
        info = { mode: m === 'eq' && o.invert ? 'ne' : m, value: xtUint(o, name, 0, 255) };
      });
      const given = order.filter((m) => opts.some((o) => o.name === opt(m)));
      for (const a of given)
        for (const b of given)
          if (a !== 'eq' && a !== b)
            throw new ExtensionError(`${name}: option "--${opt(a)}" cannot be used together with "--${opt(b)}".`, opts[1]?.token);
      if (!info)
        throw new ExtensionError(`${label} match: You must specify one of \`--${opt('eq')}', \`--${opt('lt')}', \`--${opt('gt')}${name === 'hl' ? "'" : ''}`);
      return info;
    },
    save: (i) => (i.mode === 'ne' ? ` ! --${opt('eq')}` : ` --${opt(i.mode)}`) + ` ${i.value}`,
    list: (i) => ` ${label} match ${label} ${SIGN[i.mode]} ${i.value}`,
    match(i, p) {
      if (i.mode === 'eq') return p.ttl === i.value;
      if (i.mode === 'ne') return p.ttl !== i.value;
      return i.mode === 'lt' ? p.ttl < i.value : p.ttl > i.value;
    },
  };
}

export const ttl: MatchExtension<TtlInfo> = { kind: 'match', name: 'ttl', family: 'ipv4', ...ttlLike('ttl', 'TTL') };
