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
export async function markDirty(db: Db, marks: { pk: number; start: number }[]) {
  if (marks.length === 0) return
  const values = sql.join(marks.map((m) => sql`(${m.pk}::int, ${iso(m.start)}::timestamptz)`))
  await sql`
    insert into energy_dirty (device_pk, start, marked_at)
    select v.pk, v.start, clock_timestamp() from (values ${values}) as v(pk, start)
    where exists (select 1 from devices d where d.id = v.pk)
    on conflict (device_pk, start) do update set marked_at = clock_timestamp()`.execute(db)
}

/** Dirty intervals, oldest first; those starting at or after `before` are left for later. */
export function dirtyIntervals(db: Db, options: { before: number; devicePk?: number; limit: number }) {
  let q = db
    .selectFrom('energy_dirty')
    .select(['device_pk', 'start', 'marked_at'])
    .where('start', '<', new Date(options.before))
  if (options.devicePk !== undefined) q = q.where('device_pk', '=', options.devicePk)
  return q.orderBy('start').limit(options.limit).execute()
}

/** Clears marks that were not refreshed since they were read (a newer mark means: again). */
export async function clearDirty(db: Db, rows: { device_pk: number; start: Date; marked_at: Date }[]) {
  for (const r of rows) {
    await db
      .deleteFrom('energy_dirty')
      .where('device_pk', '=', r.device_pk)
      .where('start', '=', r.start)
      .where('marked_at', '<=', r.marked_at)
      .execute()
  }
}

export async function upsertIntervals(db: Db, devicePk: number, intervalS: number, rows: EnergyInterval[]) {
  if (rows.length === 0) return
  await db
    .insertInto('energy_intervals')
    .values(
      rows.map((r) => ({
        device_pk: devicePk,
        start: iso(r.start),
        interval_s: intervalS,
        import_wh: r.import_wh,
        export_wh: r.export_wh,
        apparent_vah: r.apparent_vah,
        reactive_varh: r.reactive_varh,
        covered_ms: Math.round(r.covered_ms),
        updated_at: sql<Date>`now()`,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['device_pk', 'start']).doUpdateSet((eb) => ({
        import_wh: eb.ref('excluded.import_wh'),
        export_wh: eb.ref('excluded.export_wh'),
        apparent_vah: eb.ref('excluded.apparent_vah'),
        reactive_varh: eb.ref('excluded.reactive_varh'),
        covered_ms: eb.ref('excluded.covered_ms'),
        updated_at: sql`now()`,
      })),
    )
    .execute()
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

export async function insertGaps(db: Db, gaps: GapRecord[]) {
  if (gaps.length === 0) return
  await db
    .insertInto('seq_gaps')
    .values(
      gaps.map((g) => ({
        device_pk: g.devicePk,
        from_seq: g.fromSeq,
        to_seq: g.toSeq,
        from_ts: iso(g.fromTs),
        to_ts: iso(g.toTs),
      })),
    )
    .execute()
}

/** Seq gaps of a device overlapping [from, to], as time ranges integration must not cross. */
export async function gapBreaks(db: Db, devicePk: number, from: number, to: number) {
  const rows = await db
    .selectFrom('seq_gaps')
    .select(['from_ts', 'to_ts'])
    .where('device_pk', '=', devicePk)
    .where('to_ts', '>=', new Date(from))
    .where('from_ts', '<=', new Date(to))
    .execute()
  return rows.map((r) => ({ from: new Date(r.from_ts).getTime(), to: new Date(r.to_ts).getTime() }))
}
