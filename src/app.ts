import metricsPlugin from 'fastify-metrics'
import fp from 'fastify-plugin'
import type { Config } from './config.ts'
import { createAlertsModule } from './modules/alerts/index.ts'
import { createDevicesModule } from './modules/devices/index.ts'
import { healthPlugin } from './modules/health/index.ts'
import { statsPlugin } from './modules/stats/index.ts'
import { dbPlugin } from './platform/db/index.ts'
import { installErrorHandler } from './platform/errors.ts'
import { mqttPlugin } from './platform/mqtt/index.ts'
import { readinessPlugin } from './platform/readiness.ts'

export interface AppOptions {
  config: Config
  /** Tests: keep the embedded PGlite in memory. */
  inMemoryDb?: boolean
}

/** The whole application as one plugin: platform first, then the modules wired by their facades. */
export const app = fp<AppOptions>(
  async (fastify, { config, inMemoryDb }) => {
    installErrorHandler(fastify)
    await fastify.register(metricsPlugin.default, {
      endpoint: '/metrics',
      clearRegisterOnInit: true,
      routeMetrics: { enabled: true, routeBlacklist: ['/metrics', '/healthz', '/readyz'] },
    })
    await fastify.register(readinessPlugin)
    await fastify.register(dbPlugin, { config, inMemory: inMemoryDb })
    await fastify.register(mqttPlugin, { config })

    const devices = createDevicesModule(fastify.db)
    const alerts = createAlertsModule(fastify.db, devices.service)

    await fastify.register(healthPlugin)
    await fastify.register(devices.plugin)
    await fastify.register(alerts.plugin)
    await fastify.register(statsPlugin, { devices: devices.service, alerts: alerts.service })
  },
  { name: 'iot-meter' },
)
