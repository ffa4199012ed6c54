import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { HOUR_MS } from './compact-rows.ts'
import type { Datagram } from './datagram.ts'

/** A device and an hour of datagram t0: what one compaction takes. */
export interface CompactionUnit {
  devicePk: number
  hour: number
}

const iso = (ms: number) => new Date(ms).toISOString()
export const unitOf = (devicePk: number, t0: number): CompactionUnit => ({
  devicePk,
  hour: Math.floor(t0 / HOUR_MS) * HOUR_MS,
})
/** A datagram's key as text: its t0 in ms and its seq. */
export const keyText = (t0: number, seq: number) => `${t0}:${seq}`
/** A unit as the key of readKeys' map. */
export const unitText = (u: CompactionUnit) => `${u.devicePk}:${u.hour}`

/**
 * Takes the transaction-scoped lock of each unit, in one order (no deadlock between two writers):
 * a compaction and a write of late datagrams into the same unit take turns, so a copy is either
 * a conflict with its raw row or found among the keys. The second key is the negated hour
 * (rollups.ts locks device-hours with positive ones).
 */
export async function lockUnits(trx: Kysely<Database>, units: readonly CompactionUnit[]): Promise<void> {
  const sorted = [...new Map(units.map((u) => [unitText(u), u])).values()].sort(
    (a, b) => a.devicePk - b.devicePk || a.hour - b.hour,
  )
  if (sorted.length === 0) return
  await sql`select pg_advisory_xact_lock(d, h) from unnest(${sorted.map((u) => u.devicePk)}::int[],
    ${sorted.map((u) => -1 - u.hour / HOUR_MS)}::int[]) as u(d, h)`.execute(trx)
}

const parseInt8Array = (text: string): number[] =>
  text === '{}' ? [] : text.slice(1, -1).split(',').map(Number)

/** The keys of the compacted datagrams of these units, by unit (`devicePk:hour`). */
export async function readKeys(
  db: Kysely<Database>,
  units: readonly CompactionUnit[],
): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>()
  if (units.length === 0) return out
  const { rows } = await sql<{ device_pk: number; hour: number; t0s: string; seqs: string }>`
    select device_pk, (extract(epoch from hour) * 1000)::float8 as hour, t0s::text as t0s, seqs::text as seqs
    from telemetry_compacted_keys
    where (device_pk, hour) in (select * from unnest(${units.map((u) => u.devicePk)}::int[],
      ${units.map((u) => iso(u.hour))}::timestamptz[]))`.execute(db)
  for (const r of rows) {
    const t0s = parseInt8Array(r.t0s)
    const seqs = parseInt8Array(r.seqs)
    out.set(
      unitText({ devicePk: r.device_pk, hour: Number(r.hour) }),
      new Set(t0s.map((t0, i) => keyText(t0, seqs[i] as number))),
    )
  }
  return out
}

/** Stores the keys of a unit (the ones it had and the ones added), sorted by t0 and seq. */
export async function writeKeys(
  db: Kysely<Database>,
  unit: CompactionUnit,
  keys: Set<string>,
): Promise<void> {
  const pairs = [...keys].map((k) => k.split(':').map(Number) as [number, number])
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  await sql`insert into telemetry_compacted_keys (device_pk, hour, t0s, seqs)
    values (${unit.devicePk}::int, ${iso(unit.hour)}::timestamptz, ${pairs.map((p) => String(p[0]))}::int8[],
      ${pairs.map((p) => String(p[1]))}::int8[])
    on conflict (device_pk, hour) do update set t0s = excluded.t0s, seqs = excluded.seqs`.execute(db)
}

/**
 * The datagrams that are not copies of compacted ones, under the locks of their units (taken
 * here, held until the caller's transaction ends: write them in it).
 */
export async function withoutCompacted(
  trx: Kysely<Database>,
  datagrams: readonly Datagram[],
): Promise<Datagram[]> {
  const units = datagrams.map((d) => unitOf(d.devicePk, d.t0))
  await lockUnits(trx, units)
  const keys = await readKeys(trx, units)
  if (keys.size === 0) return [...datagrams]
  return datagrams.filter(
    (d, i) => !keys.get(unitText(units[i] as CompactionUnit))?.has(keyText(d.t0, d.seq)),
  )
}

/**
 * Which datagrams the write path checks against the keys: those of hours before the newest
 * compacted one, or (compaction on) of hours that may be compacted by the time they are written.
 * The newest compacted hour is read at most once a minute (index on hour).
 */
export class CompactedHorizon {
  private newest: number | undefined
  private readAt = Number.NEGATIVE_INFINITY

  constructor(
    private readonly db: Kysely<Database>,
    private readonly compactAfterMs: number,
  ) {}

  /** Units whose hour is before this are checked. */
  async checkBefore(now = Date.now()): Promise<number> {
    if (now - this.readAt > 60_000) {
      const { rows } = await sql<{ newest: number | null }>`
        select (extract(epoch from max(hour)) * 1000)::float8 as newest from telemetry_compacted_keys`.execute(
        this.db,
      )
      this.newest = rows[0]?.newest == null ? undefined : Number(rows[0].newest)
      this.readAt = now
    }
    // One hour of margin: a replica whose clock is behind the job's still checks what it compacted.
    const due = this.compactAfterMs > 0 ? now - this.compactAfterMs + HOUR_MS : Number.NEGATIVE_INFINITY
    return Math.max(due, this.newest === undefined ? Number.NEGATIVE_INFINITY : this.newest + HOUR_MS)
  }
}
