import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { Datagram } from './datagram.ts'
import { STORED_TYPES } from './measurement-types.ts'
import type { AggregateFn, FleetQuery, FleetSeries, SeriesPoint, SeriesQuery } from './store.ts'

const HOUR_MS = 3_600_000
const iso = (t: number) => new Date(t).toISOString()
/** The widest span of samples of one datagram (as postgres-store's range scans assume). */
const MAX_SPAN_MS = 3_660_000

/** A float8 sum taken in numeric and clamped: float8 sums of huge (flagged) readings overflow, an error. */
const clampedSum = (v: RawBuilder<unknown>) => sql`greatest(least(sum(${v}::numeric), 1e308), -1e308)::float8`

/** Hours (start ms) each device's new samples fall in. */
function dirtyHours(datagrams: readonly Datagram[]): { devicePk: number; hour: number }[] {
  const seen = new Map<string, { devicePk: number; hour: number }>()
  for (const d of datagrams) {
    // A loop, not Math.min(...d.times): no arguments list of every time per datagram.
    let min = d.t0
    let max = d.t0
    for (const t of d.times) {
      if (t < min) min = t
      if (t > max) max = t
    }
    const first = Math.floor(min / HOUR_MS)
    const last = Math.floor(max / HOUR_MS)
    for (let h = first; h <= last; h++)
      seen.set(`${d.devicePk}:${h}`, { devicePk: d.devicePk, hour: h * HOUR_MS })
  }
  return [...seen.values()]
}

/**
 * Marks the hours of these datagrams dirty (after they are stored). A mark already there is
 * renewed, so a recompute that read the samples before this write does not clear it.
 */
export async function markRollupsDirty(db: Kysely<Database>, datagrams: readonly Datagram[]): Promise<void> {
  const hours = dirtyHours(datagrams)
  if (hours.length === 0) return
  await sql`insert into rollup_dirty (device_pk, hour)
    select * from unnest(${hours.map((h) => h.devicePk)}::int[], ${hours.map((h) => iso(h.hour))}::timestamptz[])
    order by 1, 2
    on conflict (device_pk, hour) do update set marked_at = clock_timestamp()`.execute(db)
}

/**
 * Recomputes one device-hour's 1-minute, 15-minute and 1-hour rollups of every stored type from the raw
 * samples, in one transaction under an advisory lock of that device-hour: two replicas (or a
 * query and the background refresh) recomputing it at once take turns instead of colliding.
 */
function recomputeHour(db: Kysely<Database>, devicePk: number, hour: number): Promise<void> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${devicePk}::int, ${hour / HOUR_MS}::int)`.execute(trx)
    await recomputeLocked(trx, devicePk, hour)
  })
}

async function recomputeLocked(db: Kysely<Database>, devicePk: number, hour: number): Promise<void> {
  const from = iso(hour)
  const to = iso(hour + HOUR_MS)
  await sql`delete from telemetry_rollups where device_pk = ${devicePk} and start >= ${from}::timestamptz
    and start < ${to}::timestamptz`.execute(db)
  // Every stored type in one statement: the hour's rows are read once, each column unnested in turn.
  const columns = sql.join(STORED_TYPES.map((type) => sql`(${sql.lit(type)}::text, ${sql.ref(`t.${type}`)})`))
  await sql`
    insert into telemetry_rollups (device_pk, metric, bucket_s, start, count, sum, min, max, first, last)
    select ${devicePk}, p.metric, 60, to_timestamp(floor(p.time / 60000) * 60), count(*), ${clampedSum(sql`p.v`)}, min(p.v), max(p.v),
      (array_agg(p.v order by p.time))[1], (array_agg(p.v order by p.time desc))[1]
    from (
      select c.metric, date_part('epoch', t.t0) * 1000 + coalesce(t.offsets_ms[u.i], (u.i - 1) * t.step_ms) as time, u.v
      from telemetry t
        cross join lateral (values ${columns}) as c(metric, samples)
        cross join lateral unnest(c.samples) with ordinality as u(v, i)
      where t.device_pk = ${devicePk}
        and t.t0 >= ${iso(hour - MAX_SPAN_MS)}::timestamptz and t.t0 < ${to}::timestamptz
    ) p
    where p.v is not null and p.time >= ${hour} and p.time < ${hour + HOUR_MS}
    group by p.metric, 4`.execute(db)
  // The coarser buckets from the 1-minute rows just written: 15 minutes (a fleet view), 1 hour.
  for (const bucket of [900, 3600])
    await sql`
      insert into telemetry_rollups (device_pk, metric, bucket_s, start, count, sum, min, max, first, last)
      select device_pk, metric, ${bucket}, to_timestamp(floor(date_part('epoch', start) / ${bucket}) * ${bucket}),
        sum(count), ${clampedSum(sql`sum`)}, min(min), max(max),
        (array_agg(first order by start))[1], (array_agg(last order by start desc))[1]
      from telemetry_rollups
      where device_pk = ${devicePk} and bucket_s = 60 and start >= ${from}::timestamptz and start < ${to}::timestamptz
      group by device_pk, metric, 4`.execute(db)
}

/** Devices and a time range [start, stop) whose dirty hours a query needs. */
export interface RollupScope {
  devicePks: readonly number[]
  start: number
  stop: number
}

function dirtyMarks(db: Kysely<Database>, scope: RollupScope | undefined, settleMs: number) {
  // marked_at as text: a JS Date would drop its microseconds, and the mark would never match again.
  let q = db
    .selectFrom('rollup_dirty')
    .select(['device_pk', 'hour', sql<string>`marked_at::text`.as('marked_at')])
  // The background takes only hours whose marks are settleMs old: an hour still filling is
  // recomputed once it is quiet, not after every batch (a query recomputes its own range at once).
  if (settleMs > 0)
    q = q.where('marked_at', '<', sql<Date>`clock_timestamp() - make_interval(secs => ${settleMs / 1000})`)
  if (scope)
    q = q
      .where(sql<boolean>`device_pk = any(${[...scope.devicePks]}::int[])`)
      .where('hour', '>=', new Date(Math.floor(scope.start / HOUR_MS) * HOUR_MS))
      .where('hour', '<', new Date(scope.stop))
  return q
}

/** Dirty hours in the scope: hours whose newest samples its rollups do not hold yet. */
export async function countDirtyHours(db: Kysely<Database>, scope: RollupScope): Promise<number> {
  const { rows } = await sql<{
    n: number
  }>`select count(*)::int as n from (${dirtyMarks(db, scope, 0)}) d`.execute(db)
  return rows[0]?.n ?? 0
}

/**
 * Brings dirty hours up to date (all, or those of some devices in [start, stop)): each is
 * recomputed, then its mark is cleared unless a write renewed it meanwhile. Stops early once
 * `deadline` (a Date.now() value) has passed. Returns how many hours were recomputed.
 */
export async function refreshRollups(
  db: Kysely<Database>,
  scope?: RollupScope,
  limit = 500,
  settleMs = 0,
  deadline = Number.POSITIVE_INFINITY,
): Promise<number> {
  const marks = await dirtyMarks(db, scope, settleMs)
    .orderBy('device_pk')
    .orderBy('hour')
    .limit(limit)
    .execute()
  let done = 0
  for (const m of marks) {
    if (Date.now() > deadline) break
    done++
    const hour = new Date(m.hour).getTime()
    await recomputeHour(db, m.device_pk, hour)
    await db
      .deleteFrom('rollup_dirty')
      .where('device_pk', '=', m.device_pk)
      .where('hour', '=', new Date(hour))
      .where('marked_at', '<=', sql<Date>`${m.marked_at}::timestamptz`)
      .execute()
  }
  return done
}

/** Rollup bucket lengths in seconds, coarsest first. */
const ROLLUP_BUCKETS = [3600, 900, 60] as const
export type RollupBucket = (typeof ROLLUP_BUCKETS)[number]

const FROM_ROLLUPS: Partial<Record<AggregateFn, ReturnType<typeof sql>>> = {
  mean: sql`greatest(least(sum(sum::numeric) / sum(count), 1e308), -1e308)::float8`,
  min: sql`min(min)`,
  max: sql`max(max)`,
  sum: clampedSum(sql`sum`),
  count: sql`sum(count)::float8`,
}

/** FROM_ROLLUPS of a window that is one rollup row. */
const ONE_ROLLUP: Partial<Record<AggregateFn, ReturnType<typeof sql>>> = {
  mean: sql`greatest(least(sum::numeric / count, 1e308), -1e308)::float8`,
  min: sql`min`,
  max: sql`max`,
  sum: sql`sum`,
  count: sql`count::float8`,
}

/** The coarsest rollup that answers the query exactly, or undefined (then raw samples answer). */
export function rollupFor(q: Omit<SeriesQuery, 'devicePk' | 'limit'>): RollupBucket | undefined {
  if (!q.everyMs || !FROM_ROLLUPS[q.fn] || !(STORED_TYPES as readonly string[]).includes(q.metric))
    return undefined
  for (const bucket of ROLLUP_BUCKETS) {
    const ms = bucket * 1000
    if (q.everyMs % ms === 0 && q.start % ms === 0 && q.stop % ms === 0) return bucket
  }
  return undefined
}

/**
 * The whole windows inside a range that does not start and stop on window boundaries, when the
 * rollups answer them: [start, stop) rounded inwards to multiples of everyMs, and the bucket.
 */
export function wholeWindows(
  q: Omit<SeriesQuery, 'devicePk' | 'limit'>,
): { start: number; stop: number; bucket: RollupBucket } | undefined {
  if (!q.everyMs) return undefined
  const start = Math.ceil(q.start / q.everyMs) * q.everyMs
  const stop = Math.floor(q.stop / q.everyMs) * q.everyMs
  if (start >= stop) return undefined
  const bucket = rollupFor({ ...q, start, stop })
  return bucket ? { start, stop, bucket } : undefined
}

/** Windows of `everyMs` from the rollups, after bringing the device's dirty hours in range up to date. */
export async function queryRollups(
  db: Kysely<Database>,
  q: SeriesQuery,
  bucket: RollupBucket,
): Promise<SeriesPoint[]> {
  while ((await refreshRollups(db, { devicePks: [q.devicePk], start: q.start, stop: q.stop })) > 0) {}
  const every = q.everyMs as number
  const { rows } = await sql<SeriesPoint>`
    select floor(date_part('epoch', start) * 1000 / ${every}) * ${every} as time, ${FROM_ROLLUPS[q.fn]} as value
    from telemetry_rollups
    where device_pk = ${q.devicePk} and metric = ${q.metric} and bucket_s = ${bucket}
      and start >= ${iso(q.start)}::timestamptz and start < ${iso(q.stop)}::timestamptz
    group by 1 order by 1 limit ${q.limit}`.execute(db)
  return rows.map((r) => ({ time: Number(r.time), value: Number(r.value) }))
}

/**
 * Windows of many devices from the rollups in one statement, after bringing their dirty hours in
 * range up to date for at most `budgetMs`; the hours left (a fleet writing right now dirties one
 * an active meter) are counted in `pendingHours`, and the background refresh takes them.
 */
export async function queryFleetRollups(
  db: Kysely<Database>,
  q: FleetQuery,
  bucket: RollupBucket,
  budgetMs: number,
): Promise<FleetSeries> {
  const scope = { devicePks: q.devicePks, start: q.start, stop: q.stop }
  const deadline = Date.now() + budgetMs
  while (Date.now() < deadline && (await refreshRollups(db, scope, 100, 0, deadline)) > 0) {}
  const every = q.everyMs
  const where = sql`device_pk = any(${[...q.devicePks]}::int[]) and metric = ${q.metric} and bucket_s = ${bucket}
    and start >= ${iso(q.start)}::timestamptz and start < ${iso(q.stop)}::timestamptz`
  const index = sql`floor((date_part('epoch', start) * 1000 - ${q.start}) / ${every})::int`
  // A window of one bucket is that bucket's row (no grouping: the same value, half the time).
  const windows =
    bucket * 1000 === every
      ? sql`select device_pk, ${index} as i, ${ONE_ROLLUP[q.fn]} as value from telemetry_rollups where ${where}`
      : sql`select device_pk, ${index} as i, ${FROM_ROLLUPS[q.fn]} as value from telemetry_rollups where ${where} group by 1, 2`
  // One row a device with its windows as arrays (in any order: each value goes by its index i): a
  // thousandth of the rows to send and parse.
  const { rows } = await sql<{ device_pk: number; i: number[]; v: number[] }>`
    select device_pk, array_agg(i) as i, array_agg(value) as v from (${windows}) w
    group by device_pk`.execute(db)
  const count = Math.ceil((q.stop - q.start) / every)
  const values = new Map<number, (number | null)[]>(
    q.devicePks.map((pk) => [pk, new Array(count).fill(null)]),
  )
  for (const r of rows) {
    const row = values.get(r.device_pk)
    if (row) for (const [k, i] of r.i.entries()) row[i] = Number(r.v[k])
  }
  return { values, pendingHours: await countDirtyHours(db, scope) }
}
