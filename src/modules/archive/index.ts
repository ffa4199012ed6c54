import type { FastifyPluginAsync } from 'fastify'
import type { DevicesService } from '../devices/index.ts'
import type { ArchiveStore } from './archive-store.ts'
import { archiveRoot, FsArchiveStore } from './fs-archive.ts'
import { archiveRoutes } from './routes.ts'

export { type ArchiveObject, type ArchiveStore, CATEGORIES, type Category } from './archive-store.ts'
export { FsArchiveStore } from './fs-archive.ts'

export interface ArchiveModuleOptions {
  dataDir: string
  devices: DevicesService
}

/** Builds the archive module: the raw-message store (filesystem under DATA_DIR/archive) and its routes. */
export function createArchiveModule({ dataDir, devices }: ArchiveModuleOptions) {
  const store: ArchiveStore = new FsArchiveStore(archiveRoot(dataDir))
  const plugin: FastifyPluginAsync = async (app) => {
    app.readiness.add('archive', () => store.ping())
    app.addHook('onClose', () => store.close())
    await app.register(archiveRoutes, { archive: store, devices })
  }
  return { store, plugin }
}
