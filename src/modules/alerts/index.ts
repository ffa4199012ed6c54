import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DevicesService } from '../devices/index.ts'
import { type AlertTargets, targetNames } from './alert-events.ts'
import type { AlertsConfig } from './alerts-config.ts'
import { AlertDeliveryWorker } from './delivery-worker.ts'
import { alertRoutes } from './routes.ts'
import { AlertsService } from './service.ts'

export type { AlertsConfig } from './alerts-config.ts'
export type { Alert, Severity } from './schemas.ts'
export { AlertsService, type SystemAlert } from './service.ts'

export interface AlertsModuleOptions {
  /** Delivery of alert events (webhooks, Alertmanager); absent = the dashboard only. */
  config?: AlertsConfig
  log?: FastifyBaseLogger
}

/**
 * Builds the alerts module: its facade (raise/resolve for other modules), its HTTP routes, and
 * the delivery worker that sends each alert event to the configured webhooks and Alertmanager.
 */
export function createAlertsModule(
  db: Kysely<Database>,
  devices: DevicesService,
  options: AlertsModuleOptions = {},
) {
  const { config, log } = options
  const targets: AlertTargets = {
    webhooks: config?.ALERT_WEBHOOK_URLS?.split(',').filter(Boolean) ?? [],
    alertmanagerUrl: config?.ALERTMANAGER_URL,
  }
  const service = new AlertsService(db, devices, {
    targets: targetNames(targets),
    updateEveryS: config?.ALERT_UPDATE_NOTIFY_S ?? 0,
  })
  const worker =
    config && log
      ? new AlertDeliveryWorker(
          db,
          {
            targets,
            secret: config.ALERT_WEBHOOK_SECRET ?? '',
            timeoutMs: config.ALERT_DELIVERY_TIMEOUT_MS,
            retryMinMs: config.ALERT_RETRY_MIN_MS,
            retryMaxMs: Math.max(config.ALERT_RETRY_MIN_MS, config.ALERT_RETRY_MAX_MS),
            resendMs: config.ALERTMANAGER_RESEND_S * 1000,
          },
          log,
        )
      : undefined
  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(alertRoutes, { alerts: service })
    if (worker?.enabled) {
      app.addHook('onReady', async () => worker.start(config?.ALERT_DELIVERY_POLL_MS ?? 1000))
      app.addHook('onClose', () => worker.stop())
    }
  }
  return { service, worker, plugin }
}
