/** `-m multiport`: up to 15 ports or ranges in one rule (libxt_multiport revision 1). */
import type { MatchExtension, PrintContext } from './types';
import { ExtensionError } from './types';
import { listPort, parsePortRange } from './util';

/** The kernel's limit: ports plus range ends, a range taking two slots. */
export const MULTIPORT_MAX_SLOTS = 15;

export interface MultiportInfo {
  which: 'sports' | 'dports' | 'ports';
  invert: boolean;
  /** Ports and ranges in input order. */
  ports: [number, number][];
}

const PROTOS = new Set(['tcp', 'udp', 'udplite', 'sctp', 'dccp', '6', '17', '136', '132', '33']);
const protoName = (p?: string): string => ({ '6': 'tcp', '17': 'udp', '132': 'sctp' } as Record<string, string>)[p ?? ''] ?? p ?? 'tcp';

/** Count the slots a port list takes. */
export const multiportSlots = (ports: [number, number][]): number =>
  ports.reduce((n, [a, b]) => n + (a === b ? 1 : 2), 0);

export const multiport: MatchExtension<MultiportInfo> = {
  kind: 'match',
  name: 'multiport',
  options: [
    { name: 'sports', aliases: ['source-ports'], args: 1, invert: true },
    { name: 'dports', aliases: ['destination-ports'], args: 1, invert: true },
    { name: 'ports', args: 1, invert: true },
  ],
  parse(opts, ctx) {
    if (opts.length === 0) throw new ExtensionError('multiport expects an option');
    if (opts.length > 1) {
      const [a, b] = opts;
      throw new ExtensionError(`multiport: option "--${b.name}" cannot be used together with "--${a.name}".`, b.token);
    }
    const o = opts[0];
    if (!ctx.protocol || ctx.protocol.invert || !PROTOS.has(ctx.protocol.value))
      throw new ExtensionError("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'", o.token);
    const ports: [number, number][] = [];
    for (const part of o.args[0].split(',')) {
      try {
        const [lo, hi] = parsePortRange(part);
        ports.push([lo, hi]);
      } catch (e) {
        throw new ExtensionError(`multiport: ${(e as Error).message}`, o.token);
      }
    }
    if (multiportSlots(ports) > MULTIPORT_MAX_SLOTS)
      throw new ExtensionError(`multiport: too many ports specified`, o.token);
    return { which: o.name as MultiportInfo['which'], invert: o.invert, ports };
  },
  save: (i) =>
    `${i.invert ? ' !' : ''} --${i.which} ` + i.ports.map(([a, b]) => (a === b ? `${a}` : `${a}:${b}`)).join(','),
  list(i, ctx: PrintContext) {
    const proto = protoName(ctx.protocol?.value);
    const ps = i.ports.map(([a, b]) => (a === b ? listPort(a, proto, ctx) : `${listPort(a, proto, ctx)}:${listPort(b, proto, ctx)}`));
    return ` multiport ${i.which} ${i.invert ? ' !' : ''}${ps.join(',')}`;
  },
  match(i, p) {
    if (p.fragment) return false;
    const hit = (port: number) => i.ports.some(([a, b]) => port >= a && port <= b);
    const r = i.which === 'sports' ? hit(p.sport) : i.which === 'dports' ? hit(p.dport) : hit(p.sport) || hit(p.dport);
    return r !== i.invert;
  },
};
