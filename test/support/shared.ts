/**
 * The shared material beside the repository (`../shared`): present on CI, absent in a user's
 * clone. Tests that read it skip with a message when it is absent — except on CI, where its
 * absence is a failure, so that a moved folder cannot quietly turn tests into skips.
 */
import type { TestContext } from 'node:test';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** `../shared` from the repository root (or $PODTABLES_SHARED). */
export const SHARED = process.env.PODTABLES_SHARED ?? resolve(import.meta.dirname, '../../../shared');
/** The real-world dumps and listings. */
export const CORPUS_DIR = join(SHARED, 'corpus', 'real-world');

/** Whether `path` (inside shared/) is here; skips the test when not, or fails it on CI. */
export function needShared(t: TestContext, path: string = SHARED): boolean {
  if (existsSync(path)) return true;
  if (process.env.CI === 'true') throw new Error(`${path} is missing on CI: shared/ must sit beside the repository`);
  t.skip(`${path} is not here (shared/ sits beside the repository on CI)`);
  return false;
}
