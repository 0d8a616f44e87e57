/**
 * The published entry, dist/podtables.cjs. It loads the bundle of the one command being run
 * (dist/cli/<command>.cjs, or init-linkerd.cjs and the like for one mesh; the plugin's own for a
 * bare `podtables cni`; every command for help)
 * and runs it from the V8 code cache the build left beside it, so that an init container or a
 * CNI ADD compiles next to nothing before it works. A cache that is missing, or that this node
 * rejects (another version, other flags), only costs the compile it would have saved.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { bundleFor } from './argv';

type ModuleWrapper = (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;

/** Run one CommonJS bundle as a module, with its code cache (`FILE.cache`) when there is one. */
export function runBundle(file: string): void {
  const source = readFileSync(file, 'utf8');
  const cache = `${file}.cache`;
  const script = new Script(Module.wrap(source), { filename: file, cachedData: existsSync(cache) ? readFileSync(cache) : undefined });
  // the build runs each command once with this set, so that the cache holds what the command compiled
  if (process.env.PODTABLES_WRITE_CODE_CACHE === '1') process.once('exit', () => writeFileSync(cache, script.createCachedData()));
  const wrapper = script.runInThisContext() as ModuleWrapper;
  const mod = { exports: {} };
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
}

runBundle(join(__dirname, 'cli', `${bundleFor(process.argv)}.cjs`));
