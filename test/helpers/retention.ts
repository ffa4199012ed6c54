import { join } from 'node:path'
import { type Kysely, sql } from 'kysely'
import { FsArchiveStore, RawArchive } from '../../src/modules/archive/index.ts'
import { createRetentionModule } from '../../src/modules/retention/index.ts'
import type { Database } from '../../src/platform/db/index.ts'
import type { TestApp } from './build.ts'

/**
 * A retention job of the test's own over the app's database and its DATA_DIR/archive (the app's
 * runs 1 s after start, then hourly): the test runs it when it wants, with the `now` it wants.
 */
export const retentionJobOf = (app: TestApp) =>
  createRetentionModule({
    db: app.app.db,
    archive: new RawArchive(new FsArchiveStore(join(app.config.DATA_DIR, 'archive')), app.app.db, 0),
    config: app.config,
    log: app.app.log,
  }).job

/**
 * Waits (up to 10 s) for the first run of the app's own retention job, 1 s after start: a test
 * running a job of its own meanwhile would find the lock taken, and one writing or reading rows
 * while the job moves them between partitions could miss them.
 */
export async function appRetentionRan(db: Kysely<Database>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await sql`select 1 from maintenance_runs where job = 'retention'`.execute(db)
    if (rows.length > 0) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
