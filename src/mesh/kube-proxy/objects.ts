/**
 * Reading Kubernetes objects (Service, EndpointSlice, legacy Endpoints) from YAML or JSON text:
 * several documents per file, `kind: List` as `kubectl get -o yaml` prints it. Each object is
 * checked with zod; a bad one becomes an Issue naming the object and the field, and is skipped.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import type { Issue } from '../../model/issue';
import { parseIP } from '../../model/addr';

const port = z.number().int().min(1).max(65535);
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const ipText = z.string().refine((s) => ipFamilyOf(s) !== undefined, { message: 'not an IP address' });

const meta = z.object({ name: z.string().min(1), namespace: z.string().min(1).default('default'), labels: z.record(z.string(), z.string()).optional() });

const ServiceSchema = z.object({
  kind: z.literal('Service'),
  metadata: meta,
  spec: z.object({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
    clusterIP: z.string().optional(),
    clusterIPs: z.array(z.string()).optional(),
    ports: z
      .array(
        z.object({
          name: z.string().default(''),
          protocol: protocol.default('TCP'),
          port,
          nodePort: port.optional(),
          targetPort: z.union([z.number(), z.string()]).optional(),
        }),
      )
      .default([]),
    externalIPs: z.array(ipText).default([]),
    externalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    internalTrafficPolicy: z.enum(['Cluster', 'Local']).default('Cluster'),
    healthCheckNodePort: port.optional(),
    loadBalancerSourceRanges: z.array(z.string()).default([]),
    sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
    sessionAffinityConfig: z.object({ clientIP: z.object({ timeoutSeconds: z.number().int().min(1).max(86400).optional() }).optional() }).optional(),
  }),
  status: z
    .object({ loadBalancer: z.object({ ingress: z.array(z.object({ ip: ipText.optional(), hostname: z.string().optional(), ipMode: z.enum(['VIP', 'Proxy']).optional() })).default([]) }).optional() })
    .optional(),
});

const condition = z.boolean().nullable().optional();
const EndpointSliceSchema = z.object({
  kind: z.literal('EndpointSlice'),
  metadata: meta.extend({ labels: z.record(z.string(), z.string()) }),
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: z
    .array(
      z.object({
        addresses: z.array(z.string()).min(1),
        conditions: z.object({ ready: condition, serving: condition, terminating: condition }).default({}),
        nodeName: z.string().optional(),
      }),
    )
    .nullable()
    .default([]),
  ports: z.array(z.object({ name: z.string().nullable().default(''), port: port.nullable().optional(), protocol: protocol.default('TCP') })).nullable().default([]),
});

const address = z.object({ ip: ipText, nodeName: z.string().optional() });
const EndpointsSchema = z.object({
  kind: z.literal('Endpoints'),
  metadata: meta,
  subsets: z
    .array(
      z.object({
        addresses: z.array(address).default([]),
        notReadyAddresses: z.array(address).default([]),
        ports: z.array(z.object({ name: z.string().default(''), port, protocol: protocol.default('TCP') })).default([]),
      }),
    )
    .default([]),
});

export type ServiceObject = z.infer<typeof ServiceSchema>;
export type EndpointSliceObject = z.infer<typeof EndpointSliceSchema>;
export type EndpointsObject = z.infer<typeof EndpointsSchema>;

/** Everything read from the inputs, with the problems found on the way. */
export interface KubeObjects {
  services: ServiceObject[];
  slices: EndpointSliceObject[];
  endpoints: EndpointsObject[];
  issues: Issue[];
  /** How many objects were skipped because they were invalid. */
  skipped: number;
}

/** `ipv4`, `ipv6` or undefined when `s` is not an address. */
export function ipFamilyOf(s: string): 'ipv4' | 'ipv6' | undefined {
  // Dotted quads are checked here by hand (no leading zeros, octets up to 255): this runs for
  // every endpoint of every slice, and a regular expression and a split cost more than the rest.
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 && digits > 0 && dots < 3) {
      dots++;
      digits = octet = 0;
    } else if (c >= 48 && c <= 57 && !(digits === 1 && octet === 0) && digits < 3 && octet * 10 + c - 48 <= 255) {
      octet = octet * 10 + c - 48;
      digits++;
    } else return s.includes(':') ? parseIP(s, 'ipv6')?.family : undefined;
  }
  return dots === 3 && digits > 0 ? 'ipv4' : undefined;
}

const SCHEMAS = { Service: ServiceSchema, EndpointSlice: EndpointSliceSchema, Endpoints: EndpointsSchema } as const;

function describe(obj: any): string {
  const ns = typeof obj?.metadata?.namespace === 'string' ? obj.metadata.namespace : 'default';
  const name = typeof obj?.metadata?.name === 'string' ? obj.metadata.name : '<unnamed>';
  return `${obj?.kind ?? 'object'} ${ns}/${name}`;
}

/** Read one text (YAML or JSON, one or more documents) and add its objects to `into`. */
export function readObjects(text: string, source: string, into: KubeObjects = emptyObjects()): KubeObjects {
  // `kubectl get -o json` of 10,000 Services and their slices took the YAML parser 5 s, and
  // JSON.parse a tenth of that. Line numbers are only needed for a problem: when one turns up,
  // what the JSON added is taken back and the text is read again as YAML, which knows its lines.
  if (/^\s*\{/.test(text)) {
    const mark = { services: into.services.length, slices: into.slices.length, endpoints: into.endpoints.length, issues: into.issues.length, skipped: into.skipped };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value !== undefined) {
      addValue(value, source, [], () => undefined, into);
      if (into.issues.length === mark.issues) return into;
      into.services.length = mark.services;
      into.slices.length = mark.slices;
      into.endpoints.length = mark.endpoints;
      into.issues.length = mark.issues;
      into.skipped = mark.skipped;
    }
  }
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const line = doc.range ? lc.linePos(doc.range[0]).line : undefined;
    if (doc.errors.length) {
      const e = doc.errors[0];
      const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      into.issues.push({ severity: 'error', code: 'bad-yaml', message: `${source}: ${message}; document skipped`, line: e.linePos?.[0].line ?? line, column: e.linePos?.[0].col });
      into.skipped++;
      continue;
    }
    // The line of a field: the deepest node of the path that the document has.
    const lineOf = (path: (string | number)[]): number | undefined => {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
      }
      return line;
    };
    addValue(doc.toJS(), source, [], lineOf, into);
  }
  return into;
}

type LineOf = (path: (string | number)[]) => number | undefined;

function addValue(value: any, source: string, at: (string | number)[], lineOf: LineOf, into: KubeObjects): void {
  if (value === null || value === undefined) return;
  if (value.kind === 'List' || (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))) {
    (value.items ?? []).forEach((item: unknown, i: number) => addValue(item, source, [...at, 'items', i], lineOf, into));
    return;
  }
  const schema = SCHEMAS[value.kind as keyof typeof SCHEMAS];
  if (!schema) {
    into.issues.push({ severity: 'warning', code: 'ignored-kind', message: `${source}: ${describe(value)}: kind is not Service, EndpointSlice or Endpoints; ignored`, line: lineOf(at) });
    return;
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0];
    const field = first.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    into.issues.push({ severity: 'error', code: 'bad-object', message: `${source}: ${describe(value)}: ${field || 'object'}: ${first.message}; skipped`, line: lineOf([...at, ...(first.path as (string | number)[])]) });
    into.skipped++;
    return;
  }
  if (r.data.kind === 'Service') into.services.push(r.data);
  else if (r.data.kind === 'EndpointSlice') into.slices.push(r.data);
  else into.endpoints.push(r.data);
}

/** An empty collection to read into. */
export function emptyObjects(): KubeObjects {
  return { services: [], slices: [], endpoints: [], issues: [], skipped: 0 };
}
