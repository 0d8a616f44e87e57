/**
 * Each command's modules, loaded on demand: the development entry (main.ts) loads only the command
 * it runs. The published build makes one bundle per command from commands.json, which names the
 * same modules and functions (a unit test holds the two equal).
 */
import type { Register } from './program';

/** Each command name and the modules that register it (`init` has Linkerd's and Istio's). */
export const COMMANDS: Record<string, () => Promise<Register[]>> = {
  convert: async () => [(await import('./convert')).register],
  trace: async () => [(await import('./trace')).register],
  demo: async () => [(await import('./demo')).register],
  snapshot: async () => [(await import('./snapshot')).register],
  init: async () => [(await import('./init')).register, (await import('./istio')).registerIstio],
  clean: async () => [(await import('./clean')).register, (await import('./istio')).registerIstio],
  verify: async () => [(await import('./verify')).register, (await import('./istio')).registerIstio],
  proxy: async () => [(await import('./proxy')).register],
  'kube-proxy': async () => [(await import('./kube-proxy')).register],
  cni: async () => [(await import('./cni-command')).register],
  validate: async () => [(await import('./validate')).register],
};
