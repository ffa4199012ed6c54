import type { FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { deviceRoutes } from './routes.ts'
import { DevicesService } from './service.ts'

export type { DeviceActivity } from './activity.ts'
export type { DeviceConfig } from './device-config.ts'
export { DEFAULT_DEVICE_CONFIG, livenessTimeoutMs } from './device-config.ts'
export { DEVICE_ID_PATTERN, type Device, type DeviceCreate, DeviceId, DeviceParams } from './schemas.ts'
export { DEVICE_NOT_FOUND, DevicesService } from './service.ts'

/** Builds the devices module: its facade for other modules and its HTTP routes. */
export function createDevicesModule(db: Kysely<Database>) {
  const service = new DevicesService(db)
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(deviceRoutes, { devices: service })
  }
  return { service, plugin }
}
