import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { type EnergyInterval, emptyInterval, SPLIT_REGISTERS } from './energy-integrator.ts'
import { clampTime } from './time-range.ts'

type Db = Kysely<Database>
const iso = (t: number) => new Date(clampTime(t)).toISOString()

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
    .where('start', '<', new Date(clampTime(options.before)))
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

const REGISTER_COLUMNS = [
  'import_wh',
  'export_wh',
  'apparent_vah',
  'reactive_varh',
  ...SPLIT_REGISTERS,
] as const satisfies readonly (keyof EnergyInterval)[]

/** Writes the intervals of any number of devices in one statement (arrays, so no parameter limit). */
export async function upsertIntervals(db: Db, intervalS: number, rows: DeviceInterval[]) {
  if (rows.length === 0) return
  const names = sql.join(REGISTER_COLUMNS.map((c) => sql.ref(c)))
  const picked = sql.join(REGISTER_COLUMNS.map((c) => sql.ref(`r.${c}`)))
  const arrays = sql.join(REGISTER_COLUMNS.map((c) => sql`${rows.map((r) => r[c])}::float8[]`))
  const updates = sql.join(REGISTER_COLUMNS.map((c) => sql`${sql.ref(c)} = excluded.${sql.ref(c)}`))
  await sql`
    insert into energy_intervals (device_pk, start, interval_s, covered_ms, updated_at, ${names})
    select r.device_pk, r.start, ${intervalS}::int, r.covered_ms, now(), ${picked}
    from unnest(
      ${rows.map((r) => r.devicePk)}::int[],
      ${rows.map((r) => iso(r.start))}::timestamptz[],
      ${rows.map((r) => Math.round(r.covered_ms))}::int8[],
      ${arrays}
    ) as r(device_pk, start, covered_ms, ${names})
    on conflict (device_pk, start) do update set
      covered_ms = excluded.covered_ms, updated_at = now(), ${updates}`.execute(db)
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
    .where('start', '>=', new Date(clampTime(start)))
    .where('start', '<', new Date(clampTime(stop)))
    .orderBy('start')
    .execute()
  const nullable = (v: number | null) => (v === null ? null : Number(v))
  return rows.map((r) => {
    const row = emptyInterval(new Date(r.start).getTime())
    row.import_wh = Number(r.import_wh)
    row.export_wh = Number(r.export_wh)
    row.covered_ms = Number(r.covered_ms)
    row.apparent_vah = nullable(r.apparent_vah)
    row.reactive_varh = nullable(r.reactive_varh)
    for (const k of SPLIT_REGISTERS) row[k] = nullable(r[k])
    return row
  })
}

/** Every register of a device added up over the intervals starting before `before` (a meter's reading). */
export async function sumBefore(db: Db, devicePk: number, before: number): Promise<EnergyInterval> {
  const sums = sql.join(REGISTER_COLUMNS.map((c) => sql`sum(${sql.ref(c)}) as ${sql.ref(c)}`))
  const { rows } = await sql<Record<string, number | string | null>>`
    select ${sums}, sum(covered_ms) as covered_ms from energy_intervals
    where device_pk = ${devicePk}::int and start < ${iso(before)}::timestamptz`.execute(db)
  const r = rows[0] ?? {}
  const row = emptyInterval(0)
  const value = (v: unknown) => (v === null || v === undefined ? null : Number(v))
  row.import_wh = value(r.import_wh) ?? 0
  row.export_wh = value(r.export_wh) ?? 0
  row.covered_ms = value(r.covered_ms) ?? 0
  row.apparent_vah = value(r.apparent_vah)
  row.reactive_varh = value(r.reactive_varh)
  for (const k of SPLIT_REGISTERS) row[k] = value(r[k])
  return row
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

const SEQ_MOD = 2 ** 32

/** A late message: it may fill (part of) a recorded seq gap of its device. */
export interface LateSeq {
  devicePk: number
  seq: number
  ts: number
}

/** What late messages filled of a device's recorded gaps, and how many missing seqs remain. */
export interface GapFill {
  devicePk: number
  filled: number[]
  remaining: number
}

const inside = (seq: number, from: number, to: number) =>
  (seq - from + SEQ_MOD) % SEQ_MOD <= (to - from + SEQ_MOD) % SEQ_MOD

/**
 * Takes late messages out of the recorded gaps they fall in (seq inside, envelope ts between the
 * gap's ends): a gap row is replaced by what is still missing of it. One read, one delete and one
 * insert for the whole batch; devices whose late messages filled nothing are not reported.
 */
export async function fillGaps(db: Db, late: LateSeq[]): Promise<GapFill[]> {
  if (late.length === 0) return []
  const pks = [...new Set(late.map((l) => l.devicePk))]
  const rows = await db.selectFrom('seq_gaps').selectAll().where('device_pk', 'in', pks).execute()
  type Piece = { from: number; to: number; fromTs: number; toTs: number }
  const byDevice = new Map<number, { id: number | null; piece: Piece }[]>()
  for (const r of rows) {
    const list = byDevice.get(r.device_pk) ?? []
    const piece = {
      from: Number(r.from_seq),
      to: Number(r.to_seq),
      fromTs: new Date(r.from_ts).getTime(),
      toTs: new Date(r.to_ts).getTime(),
    }
    list.push({ id: Number(r.id), piece })
    byDevice.set(r.device_pk, list)
  }
  const doomed = new Set<number>()
  const fills = new Map<number, number[]>()
  for (const l of late) {
    const list = byDevice.get(l.devicePk)
    const index = list?.findIndex(
      ({ piece: g }) => inside(l.seq, g.from, g.to) && l.ts >= g.fromTs && l.ts <= g.toTs,
    )
    if (!list || index === undefined || index < 0) continue
    const { id, piece: g } = list[index] as { id: number | null; piece: Piece }
    if (id !== null) doomed.add(id)
    const pieces: { id: null; piece: Piece }[] = []
    if (l.seq !== g.from)
      pieces.push({ id: null, piece: { ...g, to: (l.seq - 1 + SEQ_MOD) % SEQ_MOD, toTs: l.ts } })
    if (l.seq !== g.to) pieces.push({ id: null, piece: { ...g, from: (l.seq + 1) % SEQ_MOD, fromTs: l.ts } })
    list.splice(index, 1, ...pieces)
    fills.set(l.devicePk, [...(fills.get(l.devicePk) ?? []), l.seq])
  }
  if (fills.size === 0) return []
  await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('seq_gaps')
      .where('id', 'in', [...doomed])
      .execute()
    const fresh: GapRecord[] = []
    for (const pk of fills.keys()) {
      for (const { id, piece } of byDevice.get(pk) ?? []) {
        if (id === null)
          fresh.push({
            devicePk: pk,
            fromSeq: piece.from,
            toSeq: piece.to,
            fromTs: piece.fromTs,
            toTs: piece.toTs,
          })
      }
    }
    await insertGaps(trx, fresh)
  })
  return [...fills].map(([devicePk, filled]) => ({
    devicePk,
    filled,
    remaining: (byDevice.get(devicePk) ?? []).reduce(
      (n, { piece }) => n + ((piece.to - piece.from + SEQ_MOD) % SEQ_MOD) + 1,
      0,
    ),
  }))
}
