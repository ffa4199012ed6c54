import type { FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { alertRoutes } from './routes.ts'
import { AlertsService } from './service.ts'

export type { Alert, Severity } from './schemas.ts'
export { AlertsService, type SystemAlert } from './service.ts'

/** Builds the alerts module: its facade (raise/resolve for other modules) and its HTTP routes. */
export function createAlertsModule(db: Kysely<Database>, devices: DevicesService) {
  const service = new AlertsService(db, devices)
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(alertRoutes, { alerts: service })
  }
  return { service, plugin }
}
