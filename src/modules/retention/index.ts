import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { toIso } from '../../platform/schemas.ts'
import type { RawArchive } from '../archive/index.ts'
import { listDayPartitions } from './partitions.ts'
import type { RetentionConfig } from './retention-config.ts'
import { RETENTION_JOB, RetentionJob, type RetentionPolicy } from './retention-job.ts'
import { RetentionResponse } from './schemas.ts'

export type { RetentionConfig } from './retention-config.ts'
export type { RetentionRun } from './retention-job.ts'

export interface RetentionModuleOptions {
  db: Kysely<Database>
  archive: RawArchive
  config: RetentionConfig
  log: FastifyBaseLogger
}

const keep = (days: number) => (days > 0 ? days : null)

/** Retention by policy (docs/RETENTION.md): the background job and `GET /api/retention`. */
export function createRetentionModule({ db, archive, config, log }: RetentionModuleOptions) {
  const policy: RetentionPolicy = {
    rawDays: config.RETENTION_RAW_DAYS,
    rollupDays: config.RETENTION_ROLLUP_DAYS,
    archiveDays: config.RETENTION_ARCHIVE_DAYS,
    partitionsAheadDays: config.TELEMETRY_PARTITIONS_AHEAD_DAYS,
    intervalS: config.RETENTION_INTERVAL_S,
  }
  const job = new RetentionJob(db, archive, policy, config.MQTT_CLIENT_ID, log)

  async function describe(): Promise<RetentionResponse> {
    const partitions = await listDayPartitions(db)
    const last = await db
      .selectFrom('maintenance_runs')
      .selectAll()
      .where('job', '=', RETENTION_JOB)
      .executeTakeFirst()
    const day = (ms: number | undefined) =>
      ms === undefined ? null : new Date(ms).toISOString().slice(0, 10)
    return {
      policies: [
        {
          data: 'raw_samples',
          keep_days: keep(policy.rawDays),
          how: config.INFLUX_URL
            ? 'kept in InfluxDB: its bucket retention applies'
            : 'daily partitions of telemetry; a day is dropped once all of it is older',
        },
        {
          data: 'rollups',
          keep_days: keep(policy.rollupDays),
          how: '1-minute and 1-hour rollups whose bucket started before are deleted',
        },
        {
          data: 'archive_objects',
          keep_days: keep(policy.archiveDays),
          how: `objects of days older are deleted from the ${archive.name} archive`,
        },
        { data: 'energy_registers', keep_days: null, how: 'kept (billing)' },
        { data: 'alerts', keep_days: null, how: 'kept (history)' },
        { data: 'commands', keep_days: null, how: 'kept (history)' },
      ],
      telemetry_partitions: {
        count: partitions.length,
        oldest_day: day(partitions[0]?.day),
        newest_day: day(partitions.at(-1)?.day),
      },
      job: {
        interval_s: policy.intervalS,
        last_run: last
          ? {
              started_at: toIso(last.started_at) as string,
              finished_at: toIso(last.finished_at) as string,
              replica: last.replica,
              ok: last.ok,
              result: last.result,
            }
          : null,
      },
    }
  }

  const plugin: FastifyPluginAsync = async (app) => {
    app.get(
      '/api/retention',
      {
        schema: {
          tags: ['retention'],
          summary:
            'Retention policy per kind of data, telemetry partitions, and the last run of the retention job',
          response: { 200: RetentionResponse },
        },
      },
      describe,
    )
    app.addHook('onReady', async () => job.start())
    app.addHook('onClose', () => job.stop())
  }
  return { job, plugin }
}
