import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { compactRows, compactSeq, FLAG_COMPACTED, HOUR_MS, type StoredRow } from './compact-rows.ts'
import { type CompactionUnit, keyText, lockUnits, readKeys, unitText, writeKeys } from './compacted-keys.ts'
import type { Datagram } from './datagram.ts'
import { STORED_TYPES } from './measurement-types.ts'
import type { RecordsInsert } from './records-insert.ts'

const iso = (ms: number) => new Date(ms).toISOString()

export type { CompactionUnit }

export type UnitOutcome = 'compacted' | 'none' | 'skipped'

const arraysAsText = sql.join(STORED_TYPES.map((type) => sql`${sql.ref(type)}::text as ${sql.ref(type)}`))

async function readRows(
  db: Kysely<Database>,
  devicePk: number,
  where: RawBuilder<unknown>,
): Promise<StoredRow[]> {
  const { rows } = await sql<StoredRow>`
    select (extract(epoch from t0) * 1000)::float8 as t0, seq, n, step_ms, offsets_ms::text as offsets, other,
      ${arraysAsText}
    from telemetry where device_pk = ${devicePk}::int and ${where}
    order by t0, seq`.execute(db)
  return rows
}

/** Rows of these keys (t0 in ms, seq) of the device, as `(t0, seq) in (…)`. */
const keysOf = (rows: readonly { t0: number | string; seq: number | string }[]) => sql`(t0, seq) in (
  select * from unnest(${rows.map((r) => iso(Number(r.t0)))}::timestamptz[], ${rows.map((r) => String(r.seq))}::int8[]))`

/** The keys (t0 ms, seq) of the stubs compaction left before telemetry_compacted_keys existed. */
async function readStubs(db: Kysely<Database>, devicePk: number, hour: number) {
  const { rows } = await sql<{ t0: number; seq: string | number }>`
    select (extract(epoch from t0) * 1000)::float8 as t0, seq from telemetry
    where device_pk = ${devicePk}::int and t0 >= ${iso(hour)}::timestamptz and t0 < ${iso(hour + HOUR_MS)}::timestamptz
      and seq >= 0 and flags & ${FLAG_COMPACTED} <> 0`.execute(db)
  return rows.map((r) => ({ t0: Number(r.t0), seq: Number(r.seq) }))
}

/** Deletes the device's rows of these keys. */
const deleteRows = (
  db: Kysely<Database>,
  devicePk: number,
  rows: readonly { t0: number | string; seq: number | string }[],
) =>
  rows.length === 0
    ? undefined
    : sql`delete from telemetry where device_pk = ${devicePk}::int and ${keysOf(rows)}`.execute(db)

/**
 * Compacts one unit in one transaction, under the unit's lock (compacted-keys.ts): its raw rows
 * (late ones included) and the compact rows it already has are merged into new compact rows; the
 * raw rows are deleted and their keys (t0, seq) join the unit's compacted keys, so a redelivered
 * datagram is still stored once and the ingest's seq lookups still find it. A raw row whose key
 * is there already (a copy) adds nothing. Idempotent: a unit without raw rows is left as it is.
 * Stubs of earlier versions (raw rows with FLAG_COMPACTED and no samples) become keys too.
 */
export async function compactUnit(
  db: Kysely<Database>,
  records: RecordsInsert,
  unit: CompactionUnit,
): Promise<UnitOutcome> {
  const { devicePk, hour } = unit
  await records.ready()
  return db.transaction().execute(async (trx) => {
    await lockUnits(trx, [unit])
    const raw = await readRows(
      trx,
      devicePk,
      sql`t0 >= ${iso(hour)}::timestamptz and t0 < ${iso(hour + HOUR_MS)}::timestamptz
        and seq >= 0 and flags & ${FLAG_COMPACTED} = 0`,
    )
    const stubs = await readStubs(trx, devicePk, hour)
    if (raw.length === 0 && stubs.length === 0) return 'none'
    const keys = (await readKeys(trx, [unit])).get(unitText(unit)) ?? new Set<string>()
    const isCopy = (r: { t0: number | string; seq: number | string }) =>
      keys.has(keyText(Number(r.t0), Number(r.seq)))
    const fresh = raw.filter((r) => !isCopy(r))
    if (fresh.length > 0) {
      const compact = (
        await readRows(
          trx,
          devicePk,
          sql`t0 >= ${iso(hour)}::timestamptz and t0 < ${iso(hour + 3 * HOUR_MS)}::timestamptz and seq < 0`,
        )
      ).filter((r) => Number(r.seq) === compactSeq(hour, Number(r.t0)))
      const rows: Datagram[] | undefined = compactRows(devicePk, hour, [...compact, ...fresh])
      if (!rows) {
        // The unit stays raw (reads the same); copies of its compacted datagrams would be read twice.
        await deleteRows(trx, devicePk, raw.filter(isCopy))
        return 'skipped'
      }
      await deleteRows(trx, devicePk, compact)
      await records.write(rows, trx)
    }
    await deleteRows(trx, devicePk, [...raw, ...stubs])
    for (const r of [...raw, ...stubs]) keys.add(keyText(Number(r.t0), Number(r.seq)))
    await writeKeys(trx, unit, keys)
    return 'compacted'
  })
}

/**
 * Marks the units of datagrams whose hour is (nearly) due for compaction: late data for an hour
 * that may be compacted already, merged by the job's next run. Fresh datagrams cost no statement.
 */
export async function markLateUnits(
  db: Kysely<Database>,
  datagrams: readonly Datagram[],
  compactAfterMs: number,
  now = Date.now(),
): Promise<void> {
  // One hour of margin: a replica whose clock is behind the job's still marks what the job compacted.
  const dueBefore = now - compactAfterMs + HOUR_MS
  const units = new Map<string, CompactionUnit>()
  for (const d of datagrams) {
    const hour = Math.floor(d.t0 / HOUR_MS) * HOUR_MS
    if (hour < dueBefore) units.set(`${d.devicePk}:${hour}`, { devicePk: d.devicePk, hour })
  }
  if (units.size === 0) return
  const list = [...units.values()]
  await sql`insert into telemetry_compaction_marks (device_pk, hour)
    select * from unnest(${list.map((u) => u.devicePk)}::int[], ${list.map((u) => iso(u.hour))}::timestamptz[])
    order by 1, 2
    on conflict (device_pk, hour) do update set marked_at = clock_timestamp()`.execute(db)
}

/** Units with raw rows of datagram t0 in [from, to), by hour. */
export async function rawUnits(db: Kysely<Database>, from: number, to: number): Promise<CompactionUnit[]> {
  const { rows } = await sql<{ device_pk: number; hour: number }>`
    select device_pk, (floor(extract(epoch from t0) / 3600) * 3600000)::float8 as hour
    from telemetry
    where t0 >= ${iso(from)}::timestamptz and t0 < ${iso(to)}::timestamptz and seq >= 0 and flags & ${FLAG_COMPACTED} = 0
    group by 1, 2 order by 2, 1`.execute(db)
  return rows.map((r) => ({ devicePk: r.device_pk, hour: Number(r.hour) }))
}

/** The first hour holding raw rows, if any. */
export async function firstRawHour(db: Kysely<Database>): Promise<number | undefined> {
  const { rows } = await sql<{ first: number | null }>`
    select (floor(extract(epoch from min(t0)) / 3600) * 3600000)::float8 as first
    from telemetry where seq >= 0 and flags & ${FLAG_COMPACTED} = 0`.execute(db)
  return rows[0]?.first == null ? undefined : Number(rows[0].first)
}
