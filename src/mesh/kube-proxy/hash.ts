/**
 * kube-proxy's chain names: a prefix and the first 16 characters of the base32 (RFC 4648, with
 * the standard alphabet) of the SHA-256 of `namespace/name[:port]` + protocol [+ `ip:port`].
 * Checked against a live AKS node: default/nginx, unnamed TCP port 80 → KUBE-SVC-2CMXP7HKUVJN7L6M,
 * endpoint 10.244.0.13:80 → KUBE-SEP-RPYTXMYI33B6SF5E. The digest is synchronous (engine code
 * runs in the browser too, where WebCrypto's digest is asynchronous); see sha256.ts.
 */
import { paddedLength, sha256Words } from './sha256';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const encoder = new TextEncoder();
let bytes = new Uint8Array(256);
let length = 0;
let ascii = true;

/** Append `s` to the text being hashed (Kubernetes names and addresses are ASCII: no encoder for them). */
function put(s: string): void {
  const n = s.length;
  if (paddedLength(length + n) > bytes.length) {
    const b = new Uint8Array(paddedLength(length + n) * 2);
    b.set(bytes.subarray(0, length));
    bytes = b;
  }
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) ascii = false;
    bytes[length + i] = c;
  }
  length += n;
}

/** Per prefix, the codes of a name: the prefix's, then room for 16 base32 characters (filled per name). */
const templates = new Map<string, number[]>();

function template(prefix: string): number[] {
  let codes = templates.get(prefix);
  if (!codes) {
    codes = [];
    for (let i = 0; i < prefix.length; i++) codes.push(prefix.charCodeAt(i));
    for (let i = 0; i < 16; i++) codes.push(65);
    templates.set(prefix, codes);
  }
  return codes;
}

const ALPHABET_CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0));

/** Four base32 characters of the 20-bit value `v` into `codes[at..]`. */
function four(codes: number[], at: number, v: number): void {
  codes[at] = ALPHABET_CODES[(v >>> 15) & 31];
  codes[at + 1] = ALPHABET_CODES[(v >>> 10) & 31];
  codes[at + 2] = ALPHABET_CODES[(v >>> 5) & 31];
  codes[at + 3] = ALPHABET_CODES[v & 31];
}

/** `prefix` + kube-proxy's hash of the concatenated parts, as one flat string (a 120,000-entry map hashes these names). */
function hashedName(prefix: string, a: string, b: string, c = ''): string {
  length = 0;
  ascii = true;
  put(a);
  put(b);
  put(c);
  if (!ascii) {
    // Re-encoded whole: the parts were copied as if they were ASCII.
    const utf8 = encoder.encode(a + b + c);
    if (paddedLength(utf8.length) > bytes.length) bytes = new Uint8Array(paddedLength(utf8.length) * 2);
    bytes.set(utf8);
    length = utf8.length;
  }
  const w = sha256Words(bytes, length);
  const codes = template(prefix);
  // 16 characters are 80 bits: the first two words and the top half of the third, five bits each.
  const w0 = w[0] >>> 0;
  const w1 = w[1] >>> 0;
  const w2 = w[2] >>> 0;
  const at = prefix.length;
  four(codes, at, w0 >>> 12);
  four(codes, at + 4, ((w0 & 0xfff) << 8) | (w1 >>> 24));
  four(codes, at + 8, (w1 >>> 4) & 0xfffff);
  four(codes, at + 12, ((w1 & 0xf) << 16) | (w2 >>> 16));
  return String.fromCharCode.apply(null, codes);
}

/** kube-proxy's 16-character hash of a string (portProtoHash and the endpoint chain hash). */
export function kubeHash(text: string): string {
  return hashedName('', text, '');
}

/** The chain names of one service port: KUBE-SVC is made up front, the others (most Services need none) when asked for. */
export class ServiceChains {
  constructor(
    readonly svc: string,
    private readonly hash: string,
  ) {}
  get svl(): string {
    return `KUBE-SVL-${this.hash}`;
  }
  get ext(): string {
    return `KUBE-EXT-${this.hash}`;
  }
  get fw(): string {
    return `KUBE-FW-${this.hash}`;
  }
}

/** The per-service chain names, all from one hash of `svcPortName + protocol`. */
export function serviceChainNames(svcPortName: string, protocol: string): ServiceChains {
  const svc = hashedName('KUBE-SVC-', svcPortName, protocol);
  return new ServiceChains(svc, svc.slice(9));
}

/** The KUBE-SEP chain of one endpoint (`ip:port`, IPv6 in brackets). */
export function endpointChainName(svcPortName: string, protocol: string, endpoint: string): string {
  return hashedName('KUBE-SEP-', svcPortName, protocol, endpoint);
}
