import type { FastifyPluginAsync } from 'fastify'
import type { DevicesService } from '../devices/index.ts'
import type { ArchiveConfig } from './archive-config.ts'
import type { ArchiveStore } from './archive-store.ts'
import { archiveRoot, FsArchiveStore } from './fs-archive.ts'
import { archiveRoutes } from './routes.ts'
import { createS3ArchiveStore } from './s3-archive.ts'

export { type ArchiveBatch, ArchiveBuffer } from './archive-buffer.ts'
export type { ArchiveConfig } from './archive-config.ts'
export { type ArchiveObject, type ArchiveStore, type Category, InvalidArchiveKey } from './archive-store.ts'
export { FsArchiveStore } from './fs-archive.ts'

export interface ArchiveModuleOptions {
  dataDir: string
  devices: DevicesService
  /** S3_BUCKET set selects the S3 adapter. */
  config: ArchiveConfig
}

/** Builds the archive module: the raw-message store (S3, else files under DATA_DIR/archive) and its routes. */
export function createArchiveModule({ dataDir, devices, config }: ArchiveModuleOptions) {
  const { S3_BUCKET } = config
  const store: ArchiveStore = S3_BUCKET
    ? createS3ArchiveStore(config, S3_BUCKET)
    : new FsArchiveStore(archiveRoot(dataDir))
  const plugin: FastifyPluginAsync = async (app) => {
    app.readiness.add('archive', () => store.ping())
    app.addHook('onClose', () => store.close())
    await app.register(archiveRoutes, { archive: store, devices })
  }
  return { store, plugin }
}
