/** `-m sctp`: SCTP ports and chunk types (libxt_sctp + xt_sctp); implicit after `-p sctp`. */
import type { GivenOption, MatchExtension, PrintContext } from './types';
import { ExtensionError } from './types';
import { listPort, strtoul } from './util';

export interface SctpPorts {
  min: number;
  max: number;
  invert: boolean;
}

export interface SctpChunkFlag {
  /**
   * The chunk type the flags apply to, which libxt_sctp fills with the name's row in its table:
   * the same number for DATA … SHUTDOWN_COMPLETE, 18 for I_DATA. So `I_DATA:E` tests flags of
   * chunk type 18 and is never printed back (iptables-save shows plain `I_DATA`).
   */
  type: number;
  /** Flag bits that must be set (upper-case letters) … */
  flags: number;
  /** … among the bits that are looked at (every letter given). */
  mask: number;
}

export interface SctpInfo {
  sport?: SctpPorts;
  dport?: SctpPorts;
  chunks?: { match: 'any' | 'all' | 'only'; types: number[]; flags: SctpChunkFlag[]; invert: boolean };
}

/** libxt_sctp's chunk names, their type numbers and the flag letters each allows (bit 7 first). */
const CHUNKS: [string, number, string][] = [
  ['DATA', 0, '----IUBE'], ['INIT', 1, '--------'], ['INIT_ACK', 2, '--------'], ['SACK', 3, '--------'],
  ['HEARTBEAT', 4, '--------'], ['HEARTBEAT_ACK', 5, '--------'], ['ABORT', 6, '-------T'],
  ['SHUTDOWN', 7, '--------'], ['SHUTDOWN_ACK', 8, '--------'], ['ERROR', 9, '--------'],
  ['COOKIE_ECHO', 10, '--------'], ['COOKIE_ACK', 11, '--------'], ['ECN_ECNE', 12, '--------'],
  ['ECN_CWR', 13, '--------'], ['SHUTDOWN_COMPLETE', 14, '-------T'], ['ASCONF', 193, '--------'],
  ['ASCONF_ACK', 128, '--------'], ['FORWARD_TSN', 192, '--------'], ['I_DATA', 64, '----IUBE'],
  ['RE_CONFIG', 130, '--------'], ['PAD', 132, '--------'], ['I_FORWARD_TSN', 194, '--------'],
];
/** xt_sctp's XT_NUM_SCTP_FLAGS: chunk types that may carry flag tests. */
const MAX_FLAGGED = 4;

function parsePort(text: string): number {
  // xtables_parse_port: a number (strtoul base 0) or an sctp service; netbase lists none we model
  const v = strtoul(text);
  if (!(v >= 0 && v <= 65535)) throw new ExtensionError(`invalid port/service \`${text}' specified`);
  return v;
}

function parsePorts(o: GivenOption): SctpPorts {
  const t = o.args[0];
  const i = t.indexOf(':');
  if (i < 0) {
    const p = parsePort(t);
    return { min: p, max: p, invert: o.invert };
  }
  const min = i === 0 ? 0 : parsePort(t.slice(0, i));
  const max = i === t.length - 1 ? 65535 : parsePort(t.slice(i + 1));
  if (min > max) throw new ExtensionError('invalid portrange (min > max)');
  return { min, max, invert: o.invert };
}

function parseChunks(o: GivenOption): NonNullable<SctpInfo['chunks']> {
  const match = o.args[0].toLowerCase();
  if (match !== 'any' && match !== 'all' && match !== 'only')
    throw new ExtensionError('Match type has to be one of "ALL", "ANY" or "ONLY"');
  const list = o.args[1];
  const types = new Set<number>();
  const flags: SctpChunkFlag[] = [];
  if (list.toUpperCase() === 'ALL') for (let t = 0; t < 256; t++) types.add(t);
  else if (list.toUpperCase() !== 'NONE')
    for (const part of list.split(',')) {
      if (part === '') continue;
      const name = part.split(':', 1)[0];
      const index = CHUNKS.findIndex(([n]) => n === name.toUpperCase());
      if (index < 0) throw new ExtensionError(`Unknown sctp chunk \`${name}'`);
      const [, type, letters] = CHUNKS[index];
      types.add(type);
      const given = part.split(':', 2)[1];
      if (!given) continue;
      let f = flags.find((x) => x.type === index);
      if (!f) {
        if (flags.length === MAX_FLAGGED)
          throw new ExtensionError('Number of chunk types with flags exceeds currently allowed limit.Increasing this limit involves changing IPT_NUM_SCTP_FLAGS andrecompiling both the kernel space and user space modules');
        flags.push((f = { type: index, flags: 0, mask: 0 }));
      }
      for (const c of given) {
        const bit = letters.indexOf(c.toUpperCase());
        if (c === '-' || bit < 0) throw new ExtensionError(`Invalid flags for chunk type ${index}`);
        f.mask |= 1 << (7 - bit);
        if (c === c.toUpperCase()) f.flags |= 1 << (7 - bit);
        else f.flags &= ~(1 << (7 - bit));
      }
    }
  return { match, types: [...types].sort((a, b) => a - b), flags, invert: o.invert };
}

/** print_chunks: ALL, NONE, or the types in number order, names or `0x%04X`, flags after a colon. */
function chunkText(c: NonNullable<SctpInfo['chunks']>, numeric: boolean): string {
  let s = ` ${c.match}`;
  if (c.types.length === 0) return s + ' NONE';
  if (c.types.length === 256) return s + ' ALL';
  const parts = c.types.map((t) => {
    let p = numeric ? `0x${t.toString(16).toUpperCase().padStart(4, '0')}` : CHUNKS.find(([, n]) => n === t)![0];
    const f = c.flags.find((x) => x.type === t);
    if (f?.mask) {
      const letters = CHUNKS.find(([, n]) => n === t)![2];
      p += ':';
      for (let b = 7; b >= 0; b--)
        if (f.mask & (1 << b)) p += f.flags & (1 << b) ? letters[7 - b] : letters[7 - b].toLowerCase();
    }
    return p;
  });
  return s + ' ' + parts.join(',');
}

const savePorts = (opt: string, r?: SctpPorts) =>
  r ? `${r.invert ? ' !' : ''} --${opt} ${r.min === r.max ? r.min : `${r.min}:${r.max}`}` : '';

function listPorts(label: string, r: SctpPorts | undefined, ctx: PrintContext): string {
  if (!r || (r.min === 0 && r.max === 65535 && !r.invert)) return '';
  const inv = r.invert ? '!' : '';
  if (r.min === r.max) return ` ${label}:${inv}${listPort(r.min, 'sctp', ctx)}`;
  return ` ${label}s:${inv}${listPort(r.min, 'sctp', ctx)}:${listPort(r.max, 'sctp', ctx)}`;
}

export const sctp: MatchExtension<SctpInfo> = {
  kind: 'match',
  name: 'sctp',
  protocol: 'sctp',
  options: [
    { name: 'sport', aliases: ['source-port'], args: 1, invert: true },
    { name: 'dport', aliases: ['destination-port'], args: 1, invert: true },
    { name: 'chunk-types', args: 2, invert: true },
  ],
  parse(opts) {
    const info: SctpInfo = {};
    for (const o of opts) {
      try {
        if (o.name === 'sport') {
          if (info.sport) throw new ExtensionError("Only one `--source-port' allowed");
          info.sport = parsePorts(o);
        } else if (o.name === 'dport') {
          if (info.dport) throw new ExtensionError("Only one `--destination-port' allowed");
          info.dport = parsePorts(o);
        } else {
          if (info.chunks) throw new ExtensionError("Only one `--chunk-types' allowed");
          info.chunks = parseChunks(o);
        }
      } catch (e) {
        if (e instanceof ExtensionError) e.token ??= o.token;
        throw e;
      }
    }
    return info;
  },
  save: (i) =>
    savePorts('sport', i.sport) + savePorts('dport', i.dport) +
    (i.chunks ? `${i.chunks.invert ? ' !' : ''} --chunk-types${chunkText(i.chunks, false)}` : ''),
  list: (i, ctx) =>
    ' sctp' + listPorts('spt', i.sport, ctx) + listPorts('dpt', i.dport, ctx) +
    (i.chunks ? `${i.chunks.invert ? ' !' : ''}${chunkText(i.chunks, ctx.numeric)}` : ''),
  /** sctp_mt: never a later fragment; ports first; chunks are not in the model. */
  match(i, p) {
    if (p.protocol !== 132 || p.fragment) return false;
    const inR = (r: SctpPorts | undefined, v: number) => !r || ((v >= r.min && v <= r.max) !== r.invert);
    if (!inR(i.sport, p.sport) || !inR(i.dport, p.dport)) return false;
    if (i.chunks) return { undecided: 'the SCTP chunks of a packet are not modelled' };
    return true;
  },
};
