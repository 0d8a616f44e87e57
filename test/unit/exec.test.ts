/** Running system binaries: a process started ahead of its input, and one that cannot start. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, start } from '../../src/kernel/exec';

test('a process started before its input waits for it, then answers as run would', async () => {
  const s = start('cat', []);
  await new Promise((r) => setTimeout(r, 30));
  const r = await s.finish('given later\n');
  assert.deepEqual(r, await run('cat', [], { input: 'given later\n' }));
  assert.equal(r.stdout, 'given later\n');
});

test('a binary that cannot start rejects when its input is given, even long after, and nothing else fails', async () => {
  const s = start('/nonexistent/podtables-test-binary', []);
  // the spawn error arrives first; it must not surface as an unhandled rejection meanwhile
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(s.finish('x'), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('the time limit counts from the input: a process killed at the limit reports 128', async () => {
  const s = start('sleep', ['5'], { timeoutMs: 100 });
  await new Promise((r) => setTimeout(r, 150));
  const t0 = Date.now();
  const r = await s.finish('');
  assert.equal(r.code, 128);
  assert.ok(Date.now() - t0 >= 90, 'not killed before its input was given');
});

test('a binary that could not start leaves no time limit running: the program ends at once', async () => {
  // in its own node: a timer left behind would keep that process alive for the whole limit
  const code = `import { start } from ${JSON.stringify(new URL('../../src/kernel/exec.ts', import.meta.url).pathname)};
    const s = start('/nonexistent/podtables-test-binary', [], { timeoutMs: 600000 });
    await new Promise((r) => setTimeout(r, 50));
    await s.finish('x').catch(() => {});`;
  const t0 = Date.now();
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - t0 < 15_000, `ended after ${Date.now() - t0} ms`);
});
