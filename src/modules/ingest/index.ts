import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { AlertsService } from '../alerts/index.ts'
import type { RawArchive } from '../archive/index.ts'
import type { DevicesService } from '../devices/index.ts'
import type { TelemetryService } from '../telemetry/index.ts'
import type { IngestConfig } from './ingest-config.ts'
import { createIngestMetrics } from './ingest-metrics.ts'
import { subscribeExternal, tapEmbedded } from './intake.ts'
import { Journal } from './journal.ts'
import { LivenessSweeper } from './liveness.ts'
import { IngestPipeline } from './pipeline.ts'
import { type CommandSink, PlanEffects } from './plan-effects.ts'
import { quarantineRoutes } from './quarantine-routes.ts'

export type { IngestConfig } from './ingest-config.ts'

export { type ParseLimits, parseMessage, Rejected } from './parse-message.ts'
export type { CommandSink } from './plan-effects.ts'

export interface IngestModuleOptions {
  config: IngestConfig
  db: Kysely<Database>
  devices: DevicesService
  alerts: AlertsService
  telemetry: TelemetryService
  archive: RawArchive
  commands?: CommandSink
}

/**
 * Builds the ingest module: the MQTT intake (embedded broker tap or external subscriptions),
 * the journal, the batching pipeline, and the liveness sweeper.
 */
export function createIngestModule(o: IngestModuleOptions) {
  let pipelineRef: IngestPipeline | undefined
  /** The ingest's facade: what the stats route reports. */
  const service = {
    /** Messages this replica stored in the last hour. */
    messagesLastHour: () => pipelineRef?.messagesLastHour() ?? 0,
  }
  const plugin: FastifyPluginAsync = async (app) => {
    const { config } = o
    const metrics = createIngestMetrics(app.metrics.client, app.metrics.client.register)
    const journal = new Journal(join(config.DATA_DIR, 'journal'))
    const replayed = journal.open()
    const effects = new PlanEffects({
      archive: o.archive,
      telemetry: o.telemetry,
      devices: o.devices,
      alerts: o.alerts,
      commands: o.commands,
      log: app.log,
      runId: randomBytes(3).toString('hex'),
    })
    const pipeline = new IngestPipeline({
      config,
      db: o.db,
      journal,
      metrics,
      log: app.log.child({ module: 'ingest' }),
      effects,
      storedSeqs: o.telemetry,
      limits: {
        maxBytes: config.INGEST_MAX_BYTES,
        maxFutureMs: config.INGEST_MAX_FUTURE_S * 1000,
        maxPastMs: config.INGEST_MAX_PAST_S * 1000,
      },
      lookup: async (ids) => {
        const found = await o.devices.pksOf(ids)
        if (config.UNKNOWN_DEVICE_POLICY === 'auto_register') {
          const unknown = ids.filter((id) => !found.has(id))
          if (unknown.length > 0) {
            await o.devices.autoRegister(unknown)
            return o.devices.pksOf(ids)
          }
        }
        return found
      },
    })
    pipelineRef = pipeline
    await app.register(quarantineRoutes, { db: o.db })
    o.devices.onRegistered(async (device) => pipeline.forget(device.id))

    const sweeper = new LivenessSweeper(o.devices, o.alerts, app.log, async () => {
      // Also refreshed here: while a store fails, the flush loop that sets it is stuck retrying.
      pipeline.updateGauges()
      const counts = await o.devices.counts()
      metrics.devicesOnline.set(counts.connection.online)
      for (const link of app.mqtt.links)
        metrics.mqttConnected.set({ broker: link.name }, link.client.connected ? 1 : 0)
    })

    app.readiness.add('ingest', () => {
      const failure = pipeline.failure ?? pipeline.checkpointFailure
      if (failure) {
        const seconds = Math.round((Date.now() - failure.since) / 1000)
        throw new Error(`storing failed for ${seconds} s: ${failure.error.message}`)
      }
    })

    pipeline.start(replayed)
    if (app.embeddedBroker) tapEmbedded(app.embeddedBroker.aedes, pipeline)
    else subscribeExternal(app.mqtt, pipeline, config.MQTT_SHARED_GROUP)
    sweeper.start(config.LIVENESS_SWEEP_MS)

    // preClose runs before any onClose: the database and the broker are still there to drain into.
    app.addHook('preClose', async () => {
      await sweeper.stop()
      await pipeline.stop(Math.max(500, config.SHUTDOWN_TIMEOUT_MS - 2000))
    })
  }
  return { plugin, service }
}
