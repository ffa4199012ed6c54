import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import { type Database, runExclusive } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import type { RawArchive } from '../archive/index.ts'
import {
  createDayPartition,
  DAY_MS,
  dayStart,
  dropPartition,
  lateDays,
  listDayPartitions,
  partitionName,
  purgeDefault,
} from './partitions.ts'

export interface RetentionPolicy {
  rawDays: number
  rollupDays: number
  archiveDays: number
  partitionsAheadDays: number
  intervalS: number
}

export interface RetentionRun {
  created: string[]
  dropped: string[]
  default_rows_deleted: number
  /** Rollup rows (1-minute and 1-hour) whose bucket started before RETENTION_ROLLUP_DAYS. */
  rollups_deleted: number
  archive_objects_deleted: number
  duration_ms: number
}

export const RETENTION_JOB = 'retention'

/**
 * The retention job: creates telemetry's day partitions ahead, drops the expired ones, purges
 * the default partition and the archive. It holds a PostgreSQL advisory lock (per schema) for its
 * whole run, so two replicas never run it at once — the one that finds the lock taken skips its
 * turn. It keeps no state in memory: each run starts from what the database holds, so a restart
 * (or a replica that died mid-run, whose lock ended with its session) changes nothing. Each run is
 * recorded in maintenance_runs.
 */
export class RetentionJob {
  private readonly periodic = new PeriodicTask(
    () => this.run(),
    (err) => this.log.warn({ err }, 'retention run failed; will run again'),
  )

  constructor(
    private readonly db: Kysely<Database>,
    private readonly archive: RawArchive,
    private readonly policy: RetentionPolicy,
    private readonly replica: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Yesterday's, today's and tomorrow's partitions before anything is written: a partition created
   * while rows are being inserted can fail those inserts ("violates partition constraint"). Then the
   * first whole run soon after start (the days ahead, late days, expiry), then every interval.
   */
  async start(): Promise<void> {
    await runExclusive(
      this.db,
      RETENTION_JOB,
      this.replica,
      (conn) => this.createPartitions(conn, Date.now(), true),
      {
        record: false,
      },
    ).catch((err) =>
      this.log.warn({ err }, 'creating the telemetry partitions at start failed; the first run will'),
    )
    this.periodic.start(this.policy.intervalS * 1000)
    this.first = setTimeout(() => {
      this.firstRun = this.run().then(
        () => undefined,
        (err) => this.log.warn({ err }, 'retention run failed; will run again'),
      )
    }, 1000)
  }

  private first: NodeJS.Timeout | undefined
  private firstRun: Promise<void> | undefined

  /** Waits for a run in progress. */
  async stop(): Promise<void> {
    clearTimeout(this.first)
    await this.firstRun
    await this.periodic.stop()
  }

  /** One run, or 'busy' when another replica (or run) holds the lock. */
  async run(now = Date.now()): Promise<RetentionRun | 'busy'> {
    const result = await runExclusive(this.db, RETENTION_JOB, this.replica, (conn) => this.work(conn, now))
    if (
      result !== 'busy' &&
      result.created.length +
        result.dropped.length +
        result.rollups_deleted +
        result.archive_objects_deleted >
        0
    )
      this.log.info(result, 'retention run')
    return result
  }

  /**
   * Yesterday's and today's partitions, the days ahead, and every kept day whose late rows sit in
   * the default partition; `atStart`: only yesterday, today and tomorrow.
   */
  private async createPartitions(
    db: Kysely<Database>,
    now: number,
    atStart = false,
  ): Promise<{ created: string[] }> {
    const aheadDays = atStart ? 1 : this.policy.partitionsAheadDays
    const { rawDays } = this.policy
    const existing = new Set((await listDayPartitions(db)).map((p) => p.name))
    const created: string[] = []
    const today = dayStart(now)
    const rawCutoff = rawDays > 0 ? now - rawDays * DAY_MS : undefined
    const days = new Set<number>(atStart ? [] : await lateDays(db, rawCutoff ?? 0))
    for (let day = today - DAY_MS; day <= today + aheadDays * DAY_MS; day += DAY_MS) days.add(day)
    for (const day of [...days].sort((a, b) => a - b)) {
      if (rawCutoff !== undefined && day + DAY_MS <= rawCutoff) continue
      if (existing.has(partitionName(day))) continue
      await createDayPartition(db, day)
      created.push(partitionName(day))
    }
    return { created }
  }

  private async work(db: Kysely<Database>, now: number): Promise<RetentionRun> {
    const t0 = Date.now()
    const { rawDays, archiveDays, rollupDays } = this.policy
    const rawCutoff = rawDays > 0 ? now - rawDays * DAY_MS : undefined
    const { created } = await this.createPartitions(db, now)
    const dropped: string[] = []
    let defaultRows = 0
    if (rawCutoff !== undefined) {
      // A day goes once all of it is older than the cutoff.
      for (const p of await listDayPartitions(db)) {
        if (p.day + DAY_MS > rawCutoff) break
        await dropPartition(db, p.name)
        dropped.push(p.name)
      }
      defaultRows = await purgeDefault(db, rawCutoff)
      // The keys of compacted datagrams go with their day's rows (kept while any of that day is).
      await db
        .deleteFrom('telemetry_compacted_keys')
        .where('hour', '<', new Date(dayStart(rawCutoff)))
        .execute()
    }
    const rollups =
      rollupDays > 0
        ? Number(
            (
              await db
                .deleteFrom('telemetry_rollups')
                .where('start', '<', new Date(now - rollupDays * DAY_MS))
                .executeTakeFirst()
            ).numDeletedRows,
          )
        : 0
    const archived =
      archiveDays > 0 ? await this.archive.deleteBefore(new Date(now - archiveDays * DAY_MS), db) : 0
    return {
      created,
      dropped,
      default_rows_deleted: defaultRows,
      rollups_deleted: rollups,
      archive_objects_deleted: archived,
      duration_ms: Date.now() - t0,
    }
  }
}
