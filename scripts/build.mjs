// Bundle the CLI: one entry file plus chunks loaded on demand, so each command loads only what it
// uses; and the CNI plugin as one file of its own, since the runtime starts it once per pod.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['koffi'],
  banner: { js: "import { createRequire as __ptCreateRequire } from 'node:module'; const require = __ptCreateRequire(import.meta.url);" },
  logLevel: 'warning',
};

rmSync('dist', { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { podtables: 'src/cli/main.ts' },
  splitting: true,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
});
await build({ ...common, entryPoints: ['src/cli/cni-plugin.ts'], outfile: 'dist/cni-plugin.mjs' });
