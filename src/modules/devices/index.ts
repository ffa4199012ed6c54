import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { deviceRoutes } from './routes.ts'
import { DevicesService } from './service.ts'

/** Logs and counts (gauge `devices_invalid_id`) registered ids that break the device-id grammar. */
async function reportInvalidIds(app: FastifyInstance, service: DevicesService) {
  const invalid = await service.invalidIds()
  const gauge = new app.metrics.client.Gauge({
    name: 'devices_invalid_id',
    help: 'Registered devices whose id breaks the device-id grammar (found at start; delete them)',
    registers: [app.metrics.client.register],
  })
  gauge.set(invalid.length)
  if (invalid.length > 0)
    app.log.warn(
      { device_ids: invalid.slice(0, 20), count: invalid.length },
      'registered device ids break the device-id grammar: they cannot connect or be ingested; delete them (DELETE /api/devices/{id})',
    )
}

export type { DeviceActivity } from './activity.ts'
export type { DeviceConfig } from './device-config.ts'
export { DEFAULT_DEVICE_CONFIG } from './device-config.ts'
export { type Device, type DeviceCreate, DeviceId, DeviceParams } from './schemas.ts'
export { DevicesService } from './service.ts'

/** Builds the devices module: its facade for other modules and its HTTP routes. */
export function createDevicesModule(db: Kysely<Database>) {
  const service = new DevicesService(db)
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(deviceRoutes, { devices: service })
    await reportInvalidIds(app, service)
  }
  return { service, plugin }
}
