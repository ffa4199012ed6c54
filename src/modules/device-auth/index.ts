import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { deviceSecretRoutes } from './routes.ts'
import { DeviceSecrets } from './service.ts'

export { HashCache, type HashCacheOptions } from './hash-cache.ts'
export type { MqttSecret } from './schemas.ts'
export { DeviceSecrets } from './service.ts'

export interface DeviceAuthModuleOptions {
  db: Kysely<Database>
  devices: DevicesService
  log: FastifyBaseLogger
}

/**
 * Builds the device-auth module: the devices' MQTT secrets (issued at registration, rotated and
 * revoked by admin routes) and their hookup to the embedded broker's authentication
 * (platform/mqtt BrokerAuth): it answers the broker's credential checks and closes the session of a
 * device whose secret changed.
 */
export function createDeviceAuthModule({ db, devices, log }: DeviceAuthModuleOptions) {
  const service = new DeviceSecrets(db, devices)
  devices.onRegistered(async (device) => {
    // A failure must not fail the registration: rotating later provisions the device anyway.
    await service
      .issue(device.id, device.device_id)
      .catch((error) => log.warn({ err: error }, 'device secret not issued'))
  })
  // The secret's row goes with the device (cascade); its cached hash must go too.
  devices.onDeleted((deviceId) => service.forget(deviceId))
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(deviceSecretRoutes, { secrets: service })
    const auth = app.brokerAuth
    if (auth) {
      auth.setCredentialCheck({
        verifySecret: (deviceId, password) => service.verify(deviceId, password),
        isRegistered: (deviceId) => service.isRegistered(deviceId),
      })
      service.onRevoked((deviceId) => auth.disconnect(deviceId))
    }
  }
  return { service, plugin }
}
