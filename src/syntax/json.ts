/**
 * The JSON form of a ruleset (docs/json-schema.md): the model as it is, with addresses as text
 * (`"10.0.0.0/8"`, `"fe80::/10"`) instead of integers, so that it reads well and survives any
 * JSON tool (JSON has no 128-bit integers). A reader checks the shape and turns it back.
 */
import { z } from 'zod';
import { formatCidr, parseCidr, type Cidr, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { TABLE_NAMES, type Rule, type Ruleset } from '../model/ruleset';
import type { ParseResult } from './restore';

/** The version of the JSON form; a reader refuses others. */
export const JSON_FORM = 'podtables-ruleset/1';

const isCidr = (v: unknown): v is Cidr =>
  typeof v === 'object' && v !== null && typeof (v as Cidr).addr === 'bigint' && typeof (v as Cidr).mask === 'bigint' &&
  ((v as Cidr).family === 'ipv4' || (v as Cidr).family === 'ipv6') && Object.keys(v).length === 3;

/** Extension data may hold addresses and big numbers too: tag them so the reader knows them. */
function encode(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (isCidr(v)) return { $cidr: formatCidr(v), family: v.family };
  if (Array.isArray(v)) return v.map(encode);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = encode(x);
    return o;
  }
  return v;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$bigint === 'string' && Object.keys(o).length === 1) return BigInt(o.$bigint);
    if (typeof o.$cidr === 'string' && (o.family === 'ipv4' || o.family === 'ipv6') && Object.keys(o).length === 2) {
      const c = parseCidr(o.$cidr, o.family);
      if (typeof c === 'string') throw new Error(`${o.$cidr}: ${c}`);
      return c;
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = decode(x);
    return out;
  }
  return v;
}

/** The rule as JSON: `source`/`destination` values as address text; `line` (an input position) left out. */
function ruleToJson(r: Rule): unknown {
  const { line: _line, source, destination, matches, target, ...rest } = r;
  return {
    ...rest,
    ...(source ? { source: { value: formatCidr(source.value), invert: source.invert } } : {}),
    ...(destination ? { destination: { value: formatCidr(destination.value), invert: destination.invert } } : {}),
    matches: matches.map((m) => (m.kind === 'match' ? { ...m, info: encode(m.info) } : m)),
    ...(target ? { target: 'info' in target ? { ...target, info: encode(target.info) } : target } : {}),
  };
}

/** The ruleset as JSON text (two-space indent, newline at the end). */
export function rulesetToJson(rs: Ruleset): string {
  const doc = {
    format: JSON_FORM,
    family: rs.family,
    tables: rs.tables.map((t) => ({ name: t.name, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map(ruleToJson) })) })),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

const negStr = z.object({ value: z.string(), invert: z.boolean() }).strict();
const counters = z.object({ packets: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }).strict();
const match = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('match'), name: z.string(), info: z.unknown() }).strict(),
  z.object({ kind: z.literal('unknown'), name: z.string(), tokens: z.array(z.string()) }).strict(),
]);
const target = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('standard'), verdict: z.enum(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']) }).strict(),
  z.object({ kind: z.literal('jump'), chain: z.string() }).strict(),
  z.object({ kind: z.literal('goto'), chain: z.string() }).strict(),
  z.object({ kind: z.literal('extension'), name: z.string(), info: z.unknown() }).strict(),
  z.object({ kind: z.literal('unknown'), name: z.string(), tokens: z.array(z.string()) }).strict(),
]);
const rule = z.object({
  protocol: negStr.optional(),
  source: negStr.optional(),
  destination: negStr.optional(),
  inInterface: negStr.optional(),
  outInterface: negStr.optional(),
  fragment: z.object({ invert: z.boolean() }).strict().optional(),
  matches: z.array(match),
  target: target.optional(),
  counters: counters.optional(),
}).strict();
const doc = z.object({
  format: z.literal(JSON_FORM),
  family: z.enum(['ipv4', 'ipv6']),
  tables: z.array(z.object({
    name: z.enum(TABLE_NAMES as [string, ...string[]]),
    chains: z.array(z.object({ name: z.string(), policy: z.enum(['ACCEPT', 'DROP']).optional(), counters: counters.optional(), rules: z.array(rule) }).strict()),
  }).strict()),
}).strict();

/** Read the JSON form back into a ruleset; a wrong shape is an issue naming the path. */
export function parseJson(text: string): ParseResult {
  const fail = (message: string, line = 1): ParseResult => ({
    ruleset: { family: 'ipv4', tables: [] },
    issues: [{ severity: 'error', code: 'bad-json', message, line, column: 1 } satisfies Issue],
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`not JSON: ${(e as Error).message}`);
  }
  const r = doc.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    return fail(`${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  const family = r.data.family as Family;
  try {
    const addr = (n: { value: string; invert: boolean } | undefined, where: string) => {
      if (!n) return undefined;
      const c = parseCidr(n.value, family);
      if (typeof c === 'string') throw new Error(`${where}: ${c}`);
      return { value: c, invert: n.invert };
    };
    const ruleset: Ruleset = {
      family,
      tables: r.data.tables.map((t, ti) => ({
        name: t.name as Ruleset['tables'][number]['name'],
        chains: t.chains.map((c, ci) => ({
          ...c,
          rules: c.rules.map((x, ri) => {
            const where = `tables.${ti}.chains.${ci}.rules.${ri}`;
            const out = { ...x, matches: x.matches.map((m) => (m.kind === 'match' ? { ...m, info: decode(m.info) } : m)) } as Rule;
            if (x.target && 'info' in x.target) out.target = { ...x.target, info: decode(x.target.info) } as Rule['target'];
            const s = addr(x.source, `${where}.source`), d = addr(x.destination, `${where}.destination`);
            if (s) out.source = s;
            else delete out.source;
            if (d) out.destination = d;
            else delete out.destination;
            return out;
          }),
        })),
      })),
    };
    return { ruleset, issues: [] };
  } catch (e) {
    return fail((e as Error).message);
  }
}
