import { join } from 'node:path'
import { FsArchiveStore, RawArchive } from '../../src/modules/archive/index.ts'
import { createRetentionModule } from '../../src/modules/retention/index.ts'
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
