/**
 * The generator writes rule text directly: these properties hold that text to the model
 * (syntax/restore reads it, syntax/save prints it back unchanged), hold the restore form and a
 * partial sync to the save form, hold comments written from parts to the comment extension's
 * quoting, the chain-name hash to @noble/hashes, and the JSON reader to the YAML one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha2.js';
import { base32 } from '@scure/base';
import { generate, readObjects, renderPartialRestore, renderRestore, renderSave, toRuleset } from '../../src/mesh/kube-proxy/index';
import { kubeHash } from '../../src/mesh/kube-proxy/hash';
import { LineBuffer } from '../../src/mesh/kube-proxy/lines';
import { commentMatch, writeComment } from '../../src/mesh/kube-proxy/rules';
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import { nodeOptionsArb, objectsText } from '../support/kube-proxy-objects';

/** Chain name → its `-A` lines, per table, of a save or restore text. */
function chainsOf(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let table = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1), (table = new Map()));
    else if (line.startsWith(':')) table.set(line.slice(1).split(' ')[0], '');
    else if (line.startsWith('-A ')) {
      const name = line.split(' ')[1];
      table.set(name, table.get(name) + line + '\n');
    }
  }
  return out;
}

test('the rule text is canonical: syntax/restore reads it without an issue and syntax/save prints it back unchanged', () => {
  fc.assert(
    fc.property(objectsText, nodeOptionsArb, (text, opts) => {
      const gen = generate(readObjects(text, 'objects.json'), opts);
      const save = renderSave(gen);
      assert.deepEqual(parseRestore(save, { family: gen.family }).issues, []);
      assert.equal(saveRuleset(toRuleset(gen)), save);
    }),
    { numRuns: 300 },
  );
});

test("the restore form holds kube-proxy's chains with the same rules as the save form, in declaration order, without built-in chains or canaries", () => {
  fc.assert(
    fc.property(objectsText, nodeOptionsArb, (text, opts) => {
      const gen = generate(readObjects(text, 'objects.json'), opts);
      const save = chainsOf(renderSave(gen));
      const restore = chainsOf(renderRestore(gen));
      assert.deepEqual([...restore.keys()], ['filter', 'nat']);
      for (const [table, chains] of restore) {
        const declared = gen.tables.get(table as 'filter' | 'nat')!.names.filter((c) => /^KUBE-/.test(c) && c !== 'KUBE-PROXY-CANARY');
        assert.deepEqual([...chains.keys()], declared);
        for (const [name, rules] of chains) assert.equal(rules, save.get(table)!.get(name), `${table} ${name}`);
      }
    }),
    { numRuns: 200 },
  );
});

test('a partial sync applied over the previous sync gives the next one, and names only chains that changed', () => {
  fc.assert(
    fc.property(objectsText, objectsText, nodeOptionsArb, (a, b, opts) => {
      const prev = generate(readObjects(a, 'a.json'), opts);
      const next = generate(readObjects(b, 'b.json'), opts);
      // Apply it as iptables-restore --noflush does: a chain line flushes (or creates), -A appends, -X deletes.
      const state = chainsOf(renderRestore(prev));
      let table = new Map<string, string>();
      const named: [string, string][] = [];
      let tableName = '';
      for (const line of renderPartialRestore(prev, next).split('\n')) {
        if (line.startsWith('*')) table = state.get((tableName = line.slice(1)))!;
        else if (line.startsWith(':')) {
          const name = line.slice(1).split(' ')[0];
          table.set(name, '');
          named.push([tableName, name]);
        } else if (line.startsWith('-A ')) table.set(line.split(' ')[1], table.get(line.split(' ')[1]) + line + '\n');
        else if (line.startsWith('-X ')) table.delete(line.slice(3));
      }
      const want = chainsOf(renderRestore(next));
      for (const [t, chains] of want) assert.deepEqual(new Map([...state.get(t)!].sort()), new Map([...chains].sort()), t);
      const before = chainsOf(renderRestore(prev));
      for (const [t, name] of named) if (want.get(t)!.has(name)) assert.notEqual(before.get(t)!.get(name), want.get(t)!.get(name), `${t} ${name} is unchanged`);
    }),
    { numRuns: 200 },
  );
});

test('the chain-name hash is base32 of SHA-256 as @noble/hashes and @scure/base compute it, for any text and length', () => {
  const encoder = new TextEncoder();
  const reference = (s: string) => base32.encode(sha256(encoder.encode(s)).subarray(0, 10)).slice(0, 16);
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 80 })), (s) => assert.equal(kubeHash(s), reference(s))),
    { numRuns: 2000 },
  );
  // Around the padding boundaries: 55 bytes fit one block, 56 need two.
  for (let n = 0; n < 200; n++) assert.equal(kubeHash('x'.repeat(n)), reference('x'.repeat(n)), `length ${n}`);
});


test('a comment written from its parts is quoted and escaped as the comment extension quotes the whole text', () => {
  const part = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '-', '_', ' ', '/', ':', '"', "'", '\\', 'é', '>'), maxLength: 6 });
  fc.assert(
    fc.property(fc.array(part, { maxLength: 4 }), (parts) => {
      const out = new LineBuffer(16);
      writeComment(out, parts);
      assert.equal(out.text(), commentMatch(parts.join('')));
    }),
    { numRuns: 3000 },
  );
});

test('JSON is read without the YAML parser into the same objects, and a problem in it is still reported at its line', () => {
  fc.assert(
    fc.property(objectsText, (json) => {
      // A comment line first makes the text YAML to the reader.
      const viaYaml = readObjects(`# yaml\n${json}`, 'objects');
      const viaJson = readObjects(json, 'objects');
      assert.deepEqual(viaJson, viaYaml);
    }),
    { numRuns: 200 },
  );
  const bad = '{\n  "kind": "List",\n  "items": [\n    {"kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 70000}]}}\n  ]\n}\n';
  const objs = readObjects(bad, 'bad.json');
  assert.equal(objs.skipped, 1);
  assert.equal(objs.services.length, 0);
  assert.match(objs.issues[0].message, /Service default\/a: spec\.ports\[0\]\.port: .*skipped/);
  assert.equal(objs.issues[0].line, 4);
});
