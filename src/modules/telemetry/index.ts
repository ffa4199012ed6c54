import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import { DEFAULT_DEVICE_CONFIG, type DevicesService } from '../devices/index.ts'
import { CompactionJob } from './compaction-job.ts'
import { energyRoutes } from './energy-routes.ts'
import { EnergyService } from './energy-service.ts'
import { fleetMetricsRoutes } from './fleet-routes.ts'
import { InfluxTelemetryStore } from './influx-store.ts'
import { PostgresTelemetryStore } from './postgres-store.ts'
import { refreshRollups } from './rollups.ts'
import { metricsRoutes } from './routes.ts'
import { TelemetryService } from './service.ts'
import type { TelemetryStore } from './store.ts'
import type { TelemetryConfig } from './telemetry-config.ts'
import { parseDuration } from './time-range.ts'

export { CompactionJob, type CompactionRun } from './compaction-job.ts'
export {
  type Datagram,
  type DatagramSamples,
  datagramOf,
  FLAG_OUT_OF_RANGE,
  type Measurement,
  measurementCount,
  regularStep,
  toDatagram,
  toSamples,
} from './datagram.ts'
export type { EnergyInterval, EnergyTotals, IntegrationOptions } from './energy-integrator.ts'
export type { EnergyService } from './energy-service.ts'
export { encodeFloat8Array } from './float8-array.ts'
export type { InfluxStoreOptions } from './influx-store.ts'
export { isStoredType, RANGES, STORED_TYPES, type StoredType } from './measurement-types.ts'
export { PostgresTelemetryStore } from './postgres-store.ts'
export type { DerivedPower, ElectricalValues } from './power.ts'
export { SamplesBuilder } from './samples-builder.ts'
export { gapRecorded } from './seq-lookups.ts'
export type { TelemetryService } from './service.ts'
export type { PowerRange, PowerSample, SeqRun, SeriesPoint, SeriesQuery, TelemetryStore } from './store.ts'
export type { TelemetryConfig } from './telemetry-config.ts'

export { toBaseUnit, unitScale } from './units.ts'

export interface TelemetryModuleOptions {
  db: Kysely<Database>
  devices: DevicesService
  config: TelemetryConfig
  log: FastifyBaseLogger
  /** How long after its end (and its last mark) an interval is recomputed in the background; 60 s. */
  energySettleMs?: number
}

/** InfluxDB 2 when INFLUX_URL is set (the configuration checks all four INFLUX_* variables), else PostgreSQL/PGlite. */
function createStore(config: TelemetryConfig, db: Kysely<Database>, devices: DevicesService): TelemetryStore {
  const { INFLUX_URL: url, INFLUX_TOKEN: token, INFLUX_ORG: org, INFLUX_BUCKET: bucket } = config
  if (!url) return new PostgresTelemetryStore(db, config.TELEMETRY_COMPACT_AFTER_H * 3_600_000)
  if (!token || !org || !bucket)
    throw new Error('INFLUX_URL needs INFLUX_TOKEN, INFLUX_ORG and INFLUX_BUCKET')
  // The devices table is the devices module's: ask its facade.
  const deviceIdOf = (pk: number) => devices.deviceIdByPk(pk)
  return new InfluxTelemetryStore({ url, token, org, bucket, deviceIdOf })
}

/** Builds the telemetry module: the time-series store, energy registers, and their routes. */
export function createTelemetryModule({ db, devices, config, log, energySettleMs }: TelemetryModuleOptions) {
  const store = createStore(config, db, devices)
  const energy = new EnergyService({
    settleMs: energySettleMs,
    db,
    store,
    log,
    intervalMs: parseDuration(config.ENERGY_INTERVAL) as number,
    graceMs: config.INGEST_GAP_GRACE_MS,
    timingMany: async (pks) => {
      const fixed = config.ENERGY_MAX_GAP_S
      const configs = await devices.configsByPk(pks)
      const cadence = (pk: number) =>
        Number(configs.get(pk)?.sampling_cadence_ms ?? DEFAULT_DEVICE_CONFIG.sampling_cadence_ms)
      return new Map(
        pks.map((pk) => [pk, { cadenceMs: cadence(pk), maxGapMs: fixed ? fixed * 1000 : 5 * cadence(pk) }]),
      )
    },
  })
  const service = new TelemetryService(db, store, energy)
  // Rollups of the PostgreSQL store: dirty hours recomputed in the background once quiet for the
  // energy settle time (a query also brings its own range up to date first).
  const rollups = new PeriodicTask(
    async () => {
      while ((await refreshRollups(db, undefined, 500, energySettleMs ?? 60_000)) > 0) {}
    },
    (err) => log.warn({ err }, 'rollup refresh failed; will retry'),
  )
  // Raw rows older than TELEMETRY_COMPACT_AFTER_H into compact rows (PostgreSQL store only).
  const compaction =
    store instanceof PostgresTelemetryStore && config.TELEMETRY_COMPACT_AFTER_H > 0
      ? new CompactionJob(
          db,
          store.records,
          config.TELEMETRY_COMPACT_AFTER_H * 3_600_000,
          config.MQTT_CLIENT_ID,
          log.child({ module: 'telemetry-compaction' }),
        )
      : undefined
  const plugin: FastifyPluginAsync = async (app) => {
    app.readiness.add('telemetry_store', () => store.ping())
    energy.start(5000)
    if (store instanceof PostgresTelemetryStore) rollups.start(5000)
    compaction?.start(config.TELEMETRY_COMPACT_INTERVAL_S * 1000)
    app.addHook('onClose', async () => {
      await compaction?.stop()
      await rollups.stop()
      await energy.stop()
      await store.close()
    })
    await app.register(metricsRoutes, { store, devices })
    await app.register(fleetMetricsRoutes, { store, devices })
    await app.register(energyRoutes, { energy, devices })
  }
  return { service, plugin, compaction }
}
