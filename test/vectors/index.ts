/** Every vector file; the registry test checks that each extension has rows here. */
import type { VectorSet } from './types';
import { vectors as core } from './core';
import { vectors as tcpUdp } from './tcp-udp';
import { vectors as linkerdCore } from './linkerd-core';
// imports (group A)
import { vectors as groupA } from './group-a';
// imports (group B)
import { vectors as groupB } from './group-b';
// imports (group C)
import { vectors as hookLimits } from './hooks';
import { vectors as groupC } from './group-c';

export const ALL_VECTORS: VectorSet[] = [
  ...core,
  ...tcpUdp,
  ...linkerdCore,
  // sets (group A)
  ...groupA,
  // sets (group B)
  ...groupB,
  // sets (group C)
  ...hookLimits,
  ...groupC,
];
