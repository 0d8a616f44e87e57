/** Every vector file; the registry test checks that each extension has rows here. */
import type { VectorSet } from './types';
import { vectors as core } from './core';
import { vectors as tcpUdp } from './tcp-udp';
import { vectors as linkerdCore } from './linkerd-core';
// imports (group A)
// imports (group B)
// imports (group C)

export const ALL_VECTORS: VectorSet[] = [
  ...core,
  ...tcpUdp,
  ...linkerdCore,
  // sets (group A)
  // sets (group B)
  // sets (group C)
];
