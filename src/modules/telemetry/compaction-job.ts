import type { FastifyBaseLogger } from 'fastify'
import { type Kysely, sql } from 'kysely'
import { type Database, runExclusive } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import { HOUR_MS } from './compact-rows.ts'
import { type CompactionUnit, compactUnit, firstRawHour, rawUnits } from './compaction.ts'
import type { RecordsInsert } from './records-insert.ts'

const DAY_MS = 86_400_000
/** Hours of t0 the watermark advances by at most per run (a first run over old data catches up in steps). */
const MAX_HOURS_PER_RUN = 24
const MARKS_PER_RUN = 1000
const iso = (ms: number) => new Date(ms).toISOString()

export const COMPACTION_JOB = 'telemetry-compaction'

export interface CompactionRun {
  compacted: number
  skipped: number
  late_units: number
  compacted_before: string
  rewritten_days: string[]
  duration_ms: number
}

/**
 * The compaction job: units (device, hour of t0) older than `afterMs` are compacted (compaction.ts),
 * first those the watermark passes, then those marked late by the write path. Like the retention
 * job it holds an advisory lock (per schema) for its run, so two replicas never compact at once,
 * and keeps its state in the database (a restart resumes; compacting a unit twice changes
 * nothing). Once the watermark passes a whole day, that day's partition is rewritten (VACUUM
 * FULL): the raw rows' samples left it as dead tuples that nothing else would reclaim, since an
 * old day receives no new rows to reuse their space.
 */
export class CompactionJob {
  private readonly periodic = new PeriodicTask(
    () => this.run(),
    (err) => this.log.warn({ err }, 'telemetry compaction failed; will run again'),
  )

  constructor(
    private readonly db: Kysely<Database>,
    private readonly records: RecordsInsert,
    private readonly afterMs: number,
    private readonly replica: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(everyMs: number): void {
    this.periodic.start(everyMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }

  /** One run, or 'busy' when another replica (or run) holds the lock. */
  async run(now = Date.now()): Promise<CompactionRun | 'busy'> {
    // Before taking a connection: PGlite has one, and the row type is read through the pool.
    await this.records.ready()
    const result = await runExclusive(this.db, COMPACTION_JOB, this.replica, (conn) => this.work(conn, now))
    if (result !== 'busy' && result.compacted > 0) this.log.info(result, 'telemetry compaction run')
    return result
  }

  private async work(db: Kysely<Database>, now: number): Promise<CompactionRun> {
    const t0 = Date.now()
    const cutoff = Math.floor((now - this.afterMs) / HOUR_MS) * HOUR_MS
    const state = await readState(db)
    const from = state?.compactedBefore ?? Math.min(cutoff, (await firstRawHour(db)) ?? cutoff)
    const to = Math.max(from, Math.min(cutoff, from + MAX_HOURS_PER_RUN * HOUR_MS))
    let compacted = 0
    let skipped = 0
    const take = async (unit: CompactionUnit) => {
      const outcome = await compactUnit(db, this.records, unit)
      if (outcome === 'compacted') compacted++
      if (outcome === 'skipped') skipped++
    }
    for (const unit of await rawUnits(db, from, to)) await take(unit)
    const marks = await sql<{ device_pk: number; hour: Date | string; marked_at: string }>`
      select device_pk, hour, marked_at::text as marked_at from telemetry_compaction_marks
      where hour < ${iso(cutoff)}::timestamptz order by hour, device_pk limit ${MARKS_PER_RUN}`.execute(db)
    for (const m of marks.rows) {
      await take({ devicePk: m.device_pk, hour: new Date(m.hour).getTime() })
      // A mark renewed meanwhile (more late data) stays for the next run.
      await sql`delete from telemetry_compaction_marks where device_pk = ${m.device_pk} and hour = ${m.hour}
        and marked_at <= ${m.marked_at}::timestamptz`.execute(db)
    }
    const rewritten: string[] = []
    const firstDay = Math.floor((state?.rewrittenBefore ?? from) / DAY_MS) * DAY_MS
    const lastDay = Math.floor(to / DAY_MS) * DAY_MS
    for (let day = firstDay; day < lastDay; day += DAY_MS) {
      const name = await rewriteDay(db, day)
      if (name) rewritten.push(name)
    }
    await sql`insert into telemetry_compaction_state (id, compacted_before, rewritten_before)
      values (true, ${iso(to)}::timestamptz, ${iso(Math.max(firstDay, lastDay))}::timestamptz)
      on conflict (id) do update set compacted_before = excluded.compacted_before,
        rewritten_before = excluded.rewritten_before`.execute(db)
    return {
      compacted,
      skipped,
      late_units: marks.rows.length,
      compacted_before: iso(to),
      rewritten_days: rewritten,
      duration_ms: Date.now() - t0,
    }
  }
}

async function readState(db: Kysely<Database>) {
  const { rows } = await sql<{ compacted_before: Date | string; rewritten_before: Date | string | null }>`
    select compacted_before, rewritten_before from telemetry_compaction_state`.execute(db)
  const row = rows[0]
  if (!row) return undefined
  return {
    compactedBefore: new Date(row.compacted_before).getTime(),
    rewrittenBefore: row.rewritten_before === null ? undefined : new Date(row.rewritten_before).getTime(),
  }
}

/** Rewrites the partition holding this day's rows (never the default one); its name, or undefined. */
async function rewriteDay(db: Kysely<Database>, day: number): Promise<string | undefined> {
  const { rows } = await sql<{ schema: string; name: string }>`
    select n.nspname::text as schema, c.relname::text as name
    from (select tableoid from telemetry where t0 >= ${iso(day)}::timestamptz and t0 < ${iso(day + DAY_MS)}::timestamptz limit 1) t
    join pg_class c on c.oid = t.tableoid join pg_namespace n on n.oid = c.relnamespace`.execute(db)
  const partition = rows[0]
  if (!partition || partition.name === 'telemetry_default') return undefined
  await sql`vacuum full ${sql.id(partition.schema, partition.name)}`.execute(db)
  return partition.name
}
