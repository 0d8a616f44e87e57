// Bundle the CLI into one file so start-up reads one module.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: 'dist/podtables.mjs',
  external: ['koffi'],
  banner: { js: "import { createRequire as __ptCreateRequire } from 'node:module'; const require = __ptCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
