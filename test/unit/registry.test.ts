import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allExtensions } from '../../src/extensions/index';
import { ALL_VECTORS } from '../vectors/index';

const dir = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../src/extensions');
const NOT_EXTENSIONS = new Set(['index.ts', 'types.ts', 'util.ts']);

test('every extension file is registered', () => {
  const registered = new Set(allExtensions().map((e) => e.name));
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts') && !NOT_EXTENSIONS.has(f))) {
    const src = readFileSync(join(dir, f), 'utf8');
    const names = [...src.matchAll(/^export const (\w+): (?:Match|Target)Extension/gm)].map((m) => m[1]);
    assert.ok(names.length > 0, `${f} exports no extension`);
    for (const n of names) {
      const obj = /name: '([^']+)'/.exec(src.slice(src.indexOf(`export const ${n}:`)));
      assert.ok(obj && registered.has(obj[1]), `${f}: ${n} is not in the registry`);
    }
  }
});

test('every extension has parse, save and list vectors', () => {
  const byExt = new Map(ALL_VECTORS.map((s) => [s.extension, s.rows]));
  for (const e of allExtensions()) {
    const rows = byExt.get(e.name);
    assert.ok(rows && rows.length > 0, `${e.name} has no vector rows`);
    assert.ok(rows.some((r) => r.ok && r.save !== undefined), `${e.name} has no save row`);
    assert.ok(rows.some((r) => r.ok && r.list !== undefined), `${e.name} has no -L row`);
  }
});

test('every extension can be evaluated by the trace engine', () => {
  for (const e of allExtensions()) {
    const fn = e.kind === 'match' ? e.match : e.target;
    assert.equal(typeof fn, 'function', `${e.name} has no ${e.kind === 'match' ? 'match' : 'target'} function`);
  }
});

test('the registry refuses malformed option tables', () => {
  for (const e of allExtensions()) {
    const names = e.options.flatMap((o) => [o.name, ...(o.aliases ?? [])]);
    assert.equal(new Set(names).size, names.length, `${e.name} declares an option twice`);
    for (const o of e.options) assert.ok(o.args >= 0 && o.args <= 3, `${e.name} --${o.name}: bad arity`);
  }
});
