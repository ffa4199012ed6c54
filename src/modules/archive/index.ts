import type { FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesService } from '../devices/index.ts'
import type { ArchiveConfig } from './archive-config.ts'
import type { ArchiveStore } from './archive-store.ts'
import { archiveRoot, FsArchiveStore } from './fs-archive.ts'
import { RawArchive } from './raw-archive.ts'
import { archiveRoutes } from './routes.ts'
import { createS3ArchiveStore } from './s3-archive.ts'

export { type ArchiveBatch, ArchiveBuffer } from './archive-buffer.ts'
export type { ArchiveConfig } from './archive-config.ts'
export {
  type ArchiveBody,
  type ArchiveObject,
  type ArchiveStore,
  type Category,
  InvalidArchiveKey,
} from './archive-store.ts'
export { FsArchiveStore } from './fs-archive.ts'
export { RawArchive } from './raw-archive.ts'

export interface ArchiveModuleOptions {
  dataDir: string
  /** Holds the index of grouped objects (archive_sections). */
  db: Kysely<Database>
  devices: DevicesService
  /** S3_BUCKET set selects the S3 adapter. */
  config: ArchiveConfig
}

/**
 * Builds the archive module: the raw-message store (S3, else files under DATA_DIR/archive), the
 * index of grouped objects, and its routes. Grouped by default on S3, where every PUT is billed.
 */
export function createArchiveModule({ dataDir, db, devices, config }: ArchiveModuleOptions) {
  const { S3_BUCKET } = config
  const store: ArchiveStore = S3_BUCKET
    ? createS3ArchiveStore(config, S3_BUCKET)
    : new FsArchiveStore(archiveRoot(dataDir))
  const periodS = config.ARCHIVE_OBJECT_PERIOD_S ?? (S3_BUCKET ? 60 : 0)
  const archive = new RawArchive(store, db, periodS * 1000)
  const plugin: FastifyPluginAsync = async (app) => {
    app.readiness.add('archive', () => archive.ping())
    app.addHook('onClose', () => archive.close())
    await app.register(archiveRoutes, { archive, devices })
  }
  return { archive, plugin }
}
