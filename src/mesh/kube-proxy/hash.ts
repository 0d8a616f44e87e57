/**
 * kube-proxy's chain names: a prefix and the first 16 characters of the base32 (RFC 4648, with
 * the standard alphabet) of the SHA-256 of `namespace/name[:port]` + protocol [+ `ip:port`].
 * Checked against a live AKS node: default/nginx, unnamed TCP port 80 → KUBE-SVC-2CMXP7HKUVJN7L6M,
 * endpoint 10.244.0.13:80 → KUBE-SEP-RPYTXMYI33B6SF5E. The digest is synchronous (engine code
 * runs in the browser too, where WebCrypto's digest is asynchronous); see sha256.ts.
 * The generator keeps the names as bytes (names.ts); the string forms here are for callers.
 */
import { paddedLength, sha256Words } from './sha256';

const encoder = new TextEncoder();
let bytes = new Uint8Array(256);
let length = 0;

/** Make room for `n` more bytes of message (and its padding). */
function room(n: number): void {
  if (paddedLength(length + n) <= bytes.length) return;
  const b = new Uint8Array(paddedLength(length + n) * 2);
  b.set(bytes.subarray(0, length));
  bytes = b;
}

/** Start a new message to hash. */
export function hashStart(): void {
  length = 0;
}

/**
 * Append `s` as UTF-8. Kubernetes names and addresses are ASCII and are copied directly; any
 * other part goes through the encoder on its own, which gives the bytes of the whole text as long
 * as no part ends inside a surrogate pair (the parts are names, protocols and addresses).
 */
export function hashPut(s: string): void {
  const n = s.length;
  room(n * 3);
  const b = bytes;
  const at = length;
  let high = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    high |= c;
    b[at + i] = c;
  }
  length = high < 128 ? at + n : at + encoder.encodeInto(s, b.subarray(at)).written;
}

/** How long the message is so far (to go back to with hashRewind). */
export const hashLength = (): number => length;

/** Cut the message back to its first `n` bytes: messages that share a start write it once. */
export function hashRewind(n: number): void {
  length = n;
}

/** Append `ip:port`, IPv6 in brackets, as endpoints are named. */
export function hashPutEndpoint(ip: string, port: number, ipv6: boolean): void {
  if (ipv6) hashPutByte(91);
  hashPut(ip);
  if (ipv6) hashPutByte(93);
  hashPutByte(58);
  hashPutNumber(port);
}

/** Append one ASCII byte. */
export function hashPutByte(c: number): void {
  room(1);
  bytes[length++] = c;
}

/** Append a non-negative integer in decimal. */
export function hashPutNumber(v: number): void {
  room(16);
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  let at = length + digits;
  length = at;
  do {
    bytes[--at] = 48 + (v % 10);
    v = Math.floor(v / 10);
  } while (v > 0);
}

/** The SHA-256 state words of the message (reused by the next call). */
export function hashEnd(): Int32Array {
  return sha256Words(bytes, length);
}

const ALPHABET_CODES = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (c) => c.charCodeAt(0));

/** Four base32 characters of the 20-bit value `v` into `out[at..]`. */
function four(out: Uint8Array | number[], at: number, v: number): void {
  out[at] = ALPHABET_CODES[(v >>> 15) & 31];
  out[at + 1] = ALPHABET_CODES[(v >>> 10) & 31];
  out[at + 2] = ALPHABET_CODES[(v >>> 5) & 31];
  out[at + 3] = ALPHABET_CODES[v & 31];
}

/**
 * The 16 base32 characters of a digest whose first words are `w0`, `w1`, `w2` into `out[at..]`:
 * 80 bits, the first two words and the top half of the third, five bits per character.
 */
export function writeBase32(out: Uint8Array | number[], at: number, w0: number, w1: number, w2: number): void {
  w0 >>>= 0;
  w1 >>>= 0;
  w2 >>>= 0;
  four(out, at, w0 >>> 12);
  four(out, at + 4, ((w0 & 0xfff) << 8) | (w1 >>> 24));
  four(out, at + 8, (w1 >>> 4) & 0xfffff);
  four(out, at + 12, ((w1 & 0xf) << 16) | (w2 >>> 16));
}

const codes: number[] = [];

/** `prefix` + kube-proxy's hash of the concatenated parts, as a string. */
function hashedName(prefix: string, a: string, b: string, c = ''): string {
  hashStart();
  hashPut(a);
  hashPut(b);
  hashPut(c);
  const w = hashEnd();
  codes.length = 0;
  for (let i = 0; i < prefix.length; i++) codes.push(prefix.charCodeAt(i));
  writeBase32(codes, prefix.length, w[0], w[1], w[2]);
  return String.fromCharCode.apply(null, codes);
}

/** kube-proxy's 16-character hash of a string (portProtoHash and the endpoint chain hash). */
export function kubeHash(text: string): string {
  return hashedName('', text, '');
}

/** The chain names of one service port, all from one hash of `svcPortName + protocol`. */
export interface ServiceChainNames {
  svc: string;
  svl: string;
  ext: string;
  fw: string;
}

/** The per-service chain names of a service port. */
export function serviceChainNames(svcPortName: string, protocol: string): ServiceChainNames {
  const hash = kubeHash(svcPortName + protocol);
  return { svc: `KUBE-SVC-${hash}`, svl: `KUBE-SVL-${hash}`, ext: `KUBE-EXT-${hash}`, fw: `KUBE-FW-${hash}` };
}

/** The KUBE-SEP chain of one endpoint (`ip:port`, IPv6 in brackets). */
export function endpointChainName(svcPortName: string, protocol: string, endpoint: string): string {
  return hashedName('KUBE-SEP-', svcPortName, protocol, endpoint);
}
