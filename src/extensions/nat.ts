/** The NAT targets (libxt_REDIRECT, …): they rewrite a flow's first packet and accept it. */
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { parsePort } from './util';

export interface RedirectInfo {
  ports?: [number, number];
  random: boolean;
}

function parsePortSpan(text: string): [number, number] {
  const i = text.indexOf('-');
  const lo = parsePort(i < 0 ? text : text.slice(0, i));
  const hi = i < 0 ? lo : parsePort(text.slice(i + 1));
  if (lo > hi) throw new ExtensionError(`Invalid port range "${text}"`);
  return [lo, hi];
}

const span = ([a, b]: [number, number]) => (a === b ? `${a}` : `${a}-${b}`);

export const REDIRECT: TargetExtension<RedirectInfo> = {
  kind: 'target',
  name: 'REDIRECT',
  tables: ['nat'],
  hooks: ['PREROUTING', 'OUTPUT'],
  options: [
    { name: 'to-ports', args: 1 },
    { name: 'random', args: 0 },
  ],
  parse(opts) {
    const info: RedirectInfo = { random: false };
    for (const o of opts) {
      if (o.name === 'random') info.random = true;
      else
        try {
          info.ports = parsePortSpan(o.args[0]);
        } catch (e) {
          throw new ExtensionError((e as Error).message, o.token);
        }
    }
    return info;
  },
  save: (i) => (i.ports ? ` --to-ports ${span(i.ports)}` : '') + (i.random ? ' --random' : ''),
  list: (i) => (i.ports ? ` redir ports ${span(i.ports)}` : '') + (i.random ? ' random' : ''),
  target(i, _p, ctx) {
    ctx.nat({ side: 'dst', pick: 'redirect', portMin: i.ports?.[0], portMax: i.ports?.[1], random: i.random });
    return { verdict: 'accept' };
  },
};
