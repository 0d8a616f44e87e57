// Build the published CLI into dist/:
//   podtables.cjs        the entry: picks the bundle of the command being run (src/cli/launch.ts)
//   cli/<command>.cjs    one bundle per command (src/cli/commands.json), with only its own code
//   cli/all.cjs          every command, for help and unknown words (src/cli/main.ts)
//   cli/cni-plugin.cjs   the CNI plugin alone, as the runtime calls it once per pod
//   cli/*.cjs.cache      V8's code cache of each bundle, made here by this node
// Init containers and CNI ADDs run once per pod, so start-up is what they cost: a bundle of one
// command, loaded as CommonJS from its code cache, starts in a fraction of the time of the whole
// program as ES modules.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { join, resolve } from 'node:path';
import { Script } from 'node:vm';

const ROOT = resolve(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const commands = JSON.parse(readFileSync(join(ROOT, 'src/cli/commands.json'), 'utf8'));

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // koffi is a native module (the FFI of `podtables proxy`): required at run time, never bundled
  external: ['koffi'],
  // CommonJS has no import.meta: the few modules that need their own location get it from __filename
  define: { 'import.meta.url': '__pt_import_meta_url' },
  banner: { js: 'var __pt_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
};

/** The entry of one command's bundle: its register functions, and the shared runner. */
const entryOf = (name) => {
  const lines = ["import { runCli, startCli } from './src/cli/program';"];
  const regs = commands[name].map(([file, fn], i) => {
    lines.push(`import { ${fn} as r${i} } from './src/cli/${file}';`);
    return `r${i}`;
  });
  lines.push(`startCli(() => runCli(process.argv, [${regs.join(', ')}]));`);
  return lines.join('\n');
};

rmSync(DIST, { recursive: true, force: true });
mkdirSync(join(DIST, 'cli'), { recursive: true });
await Promise.all([
  build({ ...common, entryPoints: ['src/cli/launch.ts'], outfile: join(DIST, 'podtables.cjs') }),
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: join(DIST, 'cli/all.cjs') }),
  build({ ...common, entryPoints: ['src/cli/cni-plugin.ts'], outfile: join(DIST, 'cli/cni-plugin.cjs') }),
  ...Object.keys(commands).map((name) =>
    build({ ...common, stdin: { contents: entryOf(name), resolveDir: ROOT, sourcefile: `cli-${name}.ts`, loader: 'ts' }, outfile: join(DIST, `cli/${name}.cjs`) }),
  ),
]);

// The code cache of a script's top level (what runs before the command's own work); functions
// compiled later are compiled on first call, as without a cache.
for (const f of readdirSync(join(DIST, 'cli')).filter((f) => f.endsWith('.cjs'))) {
  const file = join(DIST, 'cli', f);
  const source = readFileSync(file, 'utf8');
  // the launcher runs a bundle without a loader for ES modules: a dynamic import left in it would fail at run time
  if (source.split('\n').some((l) => /\bimport\(/.test(l) && !l.trimStart().startsWith('//'))) throw new Error(`${f}: a dynamic import() is left in the bundle`);
  writeFileSync(`${file}.cache`, new Script(Module.wrap(source), { filename: file }).createCachedData());
}
