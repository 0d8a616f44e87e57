import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALL_VECTORS } from '../vectors/index';
import { expectedSave, rowChain, rowFamily, rowRestore } from '../support/vectors';
import { parseRestore } from '../../src/syntax/restore';
import { saveRule } from '../../src/syntax/save';
import { listRuleOptions } from '../../src/syntax/list';

const services = new Map([['80/tcp', 'http'], ['53/udp', 'domain'], ['22/tcp', 'ssh'], ['443/tcp', 'https']]);

for (const set of ALL_VECTORS) {
  for (const row of set.rows) {
    test(`${set.extension}: ${row.ok ? 'loads' : 'refuses'} ${row.rule}`, () => {
      const res = parseRestore(rowRestore(row), { family: rowFamily(row) });
      const errors = res.issues.filter((i) => i.severity === 'error');
      if (!row.ok) {
        assert.ok(errors.length > 0, 'expected an error');
        assert.ok(errors.every((e) => e.line !== undefined && e.column !== undefined), 'errors are located');
        return;
      }
      assert.deepEqual(errors, []);
      const chain = res.ruleset.tables[0].chains.find((c) => c.name === rowChain(row))!;
      assert.equal(chain.rules.length, 1);
      const ctx = { family: rowFamily(row), numeric: true };
      assert.equal(saveRule(chain.name, chain.rules[0], ctx), expectedSave(row));
      if (row.list !== undefined) {
        assert.equal(listRuleOptions(chain.rules[0], ctx), row.list, '-L -n text');
        if (row.listNames !== undefined) {
          const named = listRuleOptions(chain.rules[0], { ...ctx, numeric: false, names: { services } });
          assert.equal(named, row.listNames, '-L text');
        }
      }
    });
  }
}
