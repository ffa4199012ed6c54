import { join } from 'node:path'
import metricsPlugin from 'fastify-metrics'
import fp from 'fastify-plugin'
import type { Config } from './config.ts'
import { createAlertsModule } from './modules/alerts/index.ts'
import { createArchiveModule } from './modules/archive/index.ts'
import { createAuthModule, securityOf } from './modules/auth/index.ts'
import { backupPlugin } from './modules/backup/index.ts'
import { createCommandsModule } from './modules/commands/index.ts'
import { dashboardPlugin } from './modules/dashboard/index.ts'
import { createDeviceAuthModule } from './modules/device-auth/index.ts'
import { createDevicesModule } from './modules/devices/index.ts'
import { healthPlugin } from './modules/health/index.ts'
import { createIngestModule } from './modules/ingest/index.ts'
import { createRetentionModule } from './modules/retention/index.ts'
import { createSimulatorModule, simulatorBrokerUrls } from './modules/simulator/index.ts'
import { statsPlugin } from './modules/stats/index.ts'
import { createTelemetryModule } from './modules/telemetry/index.ts'
import { dbPlugin } from './platform/db/index.ts'
import { installErrorHandler } from './platform/errors.ts'
import { limitJsonDepth } from './platform/json-depth.ts'
import { meterBroker, mqttPlugin } from './platform/mqtt/index.ts'
import { registerOpenApi } from './platform/openapi.ts'
import { readinessPlugin } from './platform/readiness.ts'
import { VERSION } from './version.ts'

export interface AppOptions {
  config: Config
  /** Tests: keep the embedded PGlite in memory. */
  inMemoryDb?: boolean
}

/** The whole application as one plugin: platform first, then the modules wired by their facades. */
export const app = fp<AppOptions>(
  async (fastify, { config, inMemoryDb }) => {
    installErrorHandler(fastify)
    limitJsonDepth(fastify)
    await registerOpenApi(fastify, VERSION, config.AUTH_DISABLED ? undefined : securityOf(config))
    await fastify.register(metricsPlugin.default, {
      endpoint: '/metrics',
      clearRegisterOnInit: true,
      routeMetrics: { enabled: true, routeBlacklist: ['/metrics', '/healthz', '/readyz'] },
    })
    await fastify.register(readinessPlugin)
    await fastify.register(dbPlugin, { config, inMemory: inMemoryDb })
    await fastify.register(mqttPlugin, { config })
    // Before every module's routes: security headers, CORS, rate limits and the bearer-token guard.
    const auth = createAuthModule({ db: fastify.db, config, log: fastify.log.child({ module: 'auth' }) })
    await fastify.register(auth.plugin)

    const devices = createDevicesModule(fastify.db)
    const deviceAuth = createDeviceAuthModule({
      db: fastify.db,
      devices: devices.service,
      log: fastify.log.child({ module: 'device-auth' }),
    })
    const alerts = createAlertsModule(fastify.db, devices.service, {
      config,
      log: fastify.log.child({ module: 'alerts' }),
    })
    const commands = createCommandsModule({
      db: fastify.db,
      mqtt: fastify.mqtt,
      devices: devices.service,
      alerts: alerts.service,
      config,
      log: fastify.log.child({ module: 'commands' }),
    })

    await fastify.register(healthPlugin)
    await fastify.register(devices.plugin)
    await fastify.register(deviceAuth.plugin)
    await fastify.register(alerts.plugin)
    await fastify.register(backupPlugin)
    await fastify.register(commands.plugin)

    const telemetry = createTelemetryModule({
      db: fastify.db,
      devices: devices.service,
      config,
      log: fastify.log,
    })
    const archive = createArchiveModule({
      dataDir: config.DATA_DIR,
      db: fastify.db,
      devices: devices.service,
      config,
    })
    await fastify.register(telemetry.plugin)
    await fastify.register(archive.plugin)
    const retention = createRetentionModule({
      db: fastify.db,
      archive: archive.archive,
      config,
      log: fastify.log.child({ module: 'retention' }),
    })
    await fastify.register(retention.plugin)
    // Registered before the ingest: its preClose runs first, so the meters' last messages are still stored.
    if (config.SIMULATOR_ENABLED) {
      const simulator = createSimulatorModule({
        config,
        brokerUrls: simulatorBrokerUrls(config, fastify.embeddedBroker?.port),
        log: fastify.log.child({ module: 'simulator' }),
        metrics: fastify.metrics.client.register,
        devices: devices.service,
        keyFor: async (deviceId) => (await commands.service.commandKey(deviceId)).command_key,
        stateDir: join(config.DATA_DIR, 'simulator'),
        // Embedded broker with token auth: each simulated meter gets a fresh secret at start.
        secretFor:
          fastify.embeddedBroker && config.MQTT_DEVICE_AUTH === 'token'
            ? (deviceId) => deviceAuth.service.secretForSimulated(deviceId)
            : undefined,
      })
      await fastify.register(simulator.plugin)
    }
    const ingest = createIngestModule({
      config,
      db: fastify.db,
      devices: devices.service,
      alerts: alerts.service,
      telemetry: telemetry.service,
      archive: archive.archive,
      commands: commands.service,
    })
    await fastify.register(ingest.plugin)
    await fastify.register(statsPlugin, {
      devices: devices.service,
      alerts: alerts.service,
      commands: commands.service,
      ingest: ingest.service,
    })
    await fastify.register(dashboardPlugin, {
      authDisabled: config.AUTH_DISABLED,
      version: VERSION,
      broker: () => meterBroker(fastify, config),
    })
  },
  { name: 'iot-meter' },
)
