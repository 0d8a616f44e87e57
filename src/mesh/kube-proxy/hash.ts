/**
 * kube-proxy's chain names: a prefix and the first 16 characters of the base32 (RFC 4648, with
 * the standard alphabet) of the SHA-256 of `namespace/name[:port]` + protocol [+ `ip:port`].
 * Checked against a live AKS node: default/nginx, unnamed TCP port 80 → KUBE-SVC-2CMXP7HKUVJN7L6M,
 * endpoint 10.244.0.13:80 → KUBE-SEP-RPYTXMYI33B6SF5E. The digest is @noble/hashes' synchronous
 * SHA-256, since engine code runs in the browser too, where WebCrypto's digest is asynchronous.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { base32 } from '@scure/base';

/** The first `n` characters of the standard (RFC 4648) base32 encoding of `bytes`. */
export function base32Prefix(bytes: Uint8Array, n: number): string {
  // 5 bytes are 8 characters: encode only as many bytes as the prefix needs
  return base32.encode(bytes.subarray(0, Math.ceil((n * 5) / 8 / 5) * 5)).slice(0, n);
}

const encoder = new TextEncoder();

const ascii = new Uint8Array(256);

/** kube-proxy's 16-character hash of a string (portProtoHash and the endpoint chain hash). */
export function kubeHash(text: string): string {
  // Kubernetes names, protocols and addresses are ASCII: skip the encoder's allocation for them.
  if (text.length <= ascii.length) {
    let i = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 127) break;
      ascii[i] = c;
    }
    if (i === text.length) return base32Prefix(sha256(ascii.subarray(0, i)), 16);
  }
  return base32Prefix(sha256(encoder.encode(text)), 16);
}

/** The per-service chain names, all from one hash of `svcPortName + protocol`. */
export function serviceChainNames(svcPortName: string, protocol: string) {
  const h = kubeHash(svcPortName + protocol);
  return { svc: `KUBE-SVC-${h}`, svl: `KUBE-SVL-${h}`, ext: `KUBE-EXT-${h}`, fw: `KUBE-FW-${h}` };
}

/** The KUBE-SEP chain of one endpoint (`ip:port`, IPv6 in brackets). */
export function endpointChainName(svcPortName: string, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${kubeHash(svcPortName + protocol + endpoint)}`;
}
