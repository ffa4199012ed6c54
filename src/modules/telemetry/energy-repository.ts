import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { EnergyInterval } from './energy-integrator.ts'

type Db = Kysely<Database>
const iso = (t: number) => new Date(t).toISOString()

export interface GapRecord {
  devicePk: number
  fromSeq: number
  toSeq: number
  fromTs: number
  toTs: number
}

/** Marks (device, interval start) for recomputation; a repeat refreshes marked_at. */
/*
 * Marking (an upsert) and clearing (a delete) lock the rows they touch one by one. Both do so in
 * key order (device_pk, start): two statements sharing rows in different orders deadlock, and
 * PostgreSQL breaks that only after deadlock_timeout (1 s), failing one of them — an ingest batch
 * stalled and retried, or a recompute lost.
 */
export async function markDirty(db: Db, marks: { pk: number; start: number }[]) {
  if (marks.length === 0) return
  // Two array parameters, whatever the number of marks (the bind-parameter limit).
  await sql`
    insert into energy_dirty (device_pk, start, marked_at)
    select v.pk, v.start, clock_timestamp()
    from unnest(${marks.map((m) => m.pk)}::int[], ${marks.map((m) => iso(m.start))}::timestamptz[]) as v(pk, start)
    where exists (select 1 from devices d where d.id = v.pk)
    order by v.pk, v.start
    on conflict (device_pk, start) do update set marked_at = clock_timestamp()`.execute(db)
}

/** A dirty mark as read; marked_at is text, exact to the microsecond (a Date would cut it to the ms). */
export interface DirtyMark {
  device_pk: number
  start: Date
  marked_at: string
}

/**
 * Dirty intervals, oldest first; those starting at or after `before`, or (with quietForS) marked
 * less than that long ago, are left for later.
 */
export function dirtyIntervals(
  db: Db,
  options: { before: number; devicePk?: number; quietForS?: number; limit: number },
): Promise<DirtyMark[]> {
  let q = db
    .selectFrom('energy_dirty')
    .select(['device_pk', 'start', sql<string>`marked_at::text`.as('marked_at')])
    .where('start', '<', new Date(options.before))
  if (options.devicePk !== undefined) q = q.where('device_pk', '=', options.devicePk)
  // The database's clock, as marked_at is (the server's may differ on another host).
  if (options.quietForS !== undefined)
    q = q.where(sql<boolean>`marked_at < clock_timestamp() - ${options.quietForS} * interval '1 second'`)
  return q.orderBy('start').limit(options.limit).execute()
}

/** Clears marks that were not refreshed since they were read (a newer mark means: again). */
export async function clearDirty(db: Db, marks: DirtyMark[]) {
  if (marks.length === 0) return
  // Locked in key order first (see markDirty); a mark refreshed meanwhile fails the marked_at
  // test when rechecked after the lock, and stays.
  await sql`
    with doomed as (
      select d.device_pk, d.start from energy_dirty d
      join unnest(
        ${marks.map((m) => m.device_pk)}::int[],
        ${marks.map((m) => new Date(m.start).toISOString())}::timestamptz[],
        ${marks.map((m) => m.marked_at)}::timestamptz[]
      ) as r(device_pk, start, marked_at)
        on d.device_pk = r.device_pk and d.start = r.start and d.marked_at <= r.marked_at
      order by d.device_pk, d.start
      for update of d
    )
    delete from energy_dirty d using doomed
    where d.device_pk = doomed.device_pk and d.start = doomed.start`.execute(db)
}

/** The registers of one device's interval. */
export type DeviceInterval = EnergyInterval & { devicePk: number }

/** Writes the intervals of any number of devices in one statement (arrays, so no parameter limit). */
export async function upsertIntervals(db: Db, intervalS: number, rows: DeviceInterval[]) {
  if (rows.length === 0) return
  await sql`
    insert into energy_intervals
      (device_pk, start, interval_s, import_wh, export_wh, apparent_vah, reactive_varh, covered_ms, updated_at)
    select r.device_pk, r.start, ${intervalS}::int, r.import_wh, r.export_wh, r.apparent_vah, r.reactive_varh,
      r.covered_ms, now()
    from unnest(
      ${rows.map((r) => r.devicePk)}::int[],
      ${rows.map((r) => iso(r.start))}::timestamptz[],
      ${rows.map((r) => r.import_wh)}::float8[],
      ${rows.map((r) => r.export_wh)}::float8[],
      ${rows.map((r) => r.apparent_vah)}::float8[],
      ${rows.map((r) => r.reactive_varh)}::float8[],
      ${rows.map((r) => Math.round(r.covered_ms))}::int8[]
    ) as r(device_pk, start, import_wh, export_wh, apparent_vah, reactive_varh, covered_ms)
    on conflict (device_pk, start) do update set
      import_wh = excluded.import_wh,
      export_wh = excluded.export_wh,
      apparent_vah = excluded.apparent_vah,
      reactive_varh = excluded.reactive_varh,
      covered_ms = excluded.covered_ms,
      updated_at = now()`.execute(db)
}

export async function readIntervals(
  db: Db,
  devicePk: number,
  start: number,
  stop: number,
): Promise<EnergyInterval[]> {
  const rows = await db
    .selectFrom('energy_intervals')
    .selectAll()
    .where('device_pk', '=', devicePk)
    .where('start', '>=', new Date(start))
    .where('start', '<', new Date(stop))
    .orderBy('start')
    .execute()
  return rows.map((r) => ({
    start: new Date(r.start).getTime(),
    import_wh: Number(r.import_wh),
    export_wh: Number(r.export_wh),
    apparent_vah: r.apparent_vah === null ? null : Number(r.apparent_vah),
    reactive_varh: r.reactive_varh === null ? null : Number(r.reactive_varh),
    covered_ms: Number(r.covered_ms),
  }))
}

/**
 * Records gaps in one statement of five array parameters, whatever their number (a VALUES list of
 * 13,108 gaps or more passed PostgreSQL's 65,535 bind parameters: issue 16 row 9). Gaps of devices
 * deleted meanwhile are skipped (no foreign-key error that would fail the ingest batch).
 */
export async function insertGaps(db: Db, gaps: GapRecord[]) {
  if (gaps.length === 0) return
  await sql`
    insert into seq_gaps (device_pk, from_seq, to_seq, from_ts, to_ts)
    select g.device_pk, g.from_seq, g.to_seq, g.from_ts, g.to_ts
    from unnest(
      ${gaps.map((g) => g.devicePk)}::int[],
      ${gaps.map((g) => g.fromSeq)}::int8[],
      ${gaps.map((g) => g.toSeq)}::int8[],
      ${gaps.map((g) => iso(g.fromTs))}::timestamptz[],
      ${gaps.map((g) => iso(g.toTs))}::timestamptz[]
    ) as g(device_pk, from_seq, to_seq, from_ts, to_ts)
    where exists (select 1 from devices d where d.id = g.device_pk)`.execute(db)
}

/** A device's time range [from, to]. */
export interface DeviceRange {
  devicePk: number
  from: number
  to: number
}

/**
 * Seq gaps overlapping each range, as time ranges integration must not cross: one array per range,
 * in the order given.
 */
export async function gapBreaks(db: Db, ranges: DeviceRange[]): Promise<{ from: number; to: number }[][]> {
  const out = ranges.map((): { from: number; to: number }[] => [])
  if (ranges.length === 0) return out
  const { rows } = await sql<{ k: number; from_ts: Date; to_ts: Date }>`
    select r.k, g.from_ts, g.to_ts
    from unnest(
      ${ranges.map((r) => r.devicePk)}::int[],
      ${ranges.map((r) => iso(r.from))}::timestamptz[],
      ${ranges.map((r) => iso(r.to))}::timestamptz[]
    ) with ordinality as r(device_pk, lo, hi, k)
    join seq_gaps g on g.device_pk = r.device_pk and g.to_ts >= r.lo and g.from_ts <= r.hi`.execute(db)
  for (const r of rows) {
    out[Number(r.k) - 1]?.push({ from: new Date(r.from_ts).getTime(), to: new Date(r.to_ts).getTime() })
  }
  return out
}
