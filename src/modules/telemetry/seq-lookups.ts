import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { HOUR_MS } from './compact-rows.ts'
import type { SeqAsk, SeqRun } from './store.ts'

/** A datagram's first sample (t0) precedes its envelope ts by at most this. */
export const SEQ_SPAN_MS = 3_600_000
const iso = (ms: number) => new Date(ms).toISOString()

/**
 * The seqs of runs stored in the PostgreSQL telemetry table (by any replica), one set per ask in
 * its order, in one statement: PostgresTelemetryStore's. A datagram counts when its t0 lies within
 * SEQ_SPAN_MS before the run's envelope times, up to the last. Compacted datagrams count (their
 * keys in telemetry_compacted_keys, or the stubs compaction left before); compact rows (seq < 0)
 * are no datagram's. A run wraps past 2^32 − 1 when `from` > `to`.
 */
export async function storedSeqsInTable(
  db: Kysely<Database>,
  asks: readonly SeqAsk[],
): Promise<Set<number>[]> {
  const out = asks.map(() => new Set<number>())
  if (asks.length === 0) return out
  const inRun = (seq: RawBuilder<unknown>) =>
    sql`(case when a.f <= a.l then ${seq} between a.f and a.l else ${seq} >= a.f or ${seq} <= a.l end)`
  const { rows } = await sql<{ i: number; seq: string | number }>`
    select a.i::int as i, s.seq from unnest(${asks.map((x) => x.devicePk)}::int[], ${asks.map((x) => x.run.from)}::int8[],
        ${asks.map((x) => x.run.to)}::int8[], ${asks.map((x) => x.run.fromTs - SEQ_SPAN_MS)}::float8[],
        ${asks.map((x) => x.run.toTs)}::float8[]) with ordinality as a(pk, f, l, lo, hi, i)
    cross join lateral (
      select t.seq from telemetry t
      where t.device_pk = a.pk and t.t0 >= to_timestamp(a.lo / 1000) and t.t0 <= to_timestamp(a.hi / 1000)
        and t.seq >= 0 and ${inRun(sql`t.seq`)}
      union all
      select k.seq from telemetry_compacted_keys c cross join lateral unnest(c.t0s, c.seqs) as k(t0, seq)
      where c.device_pk = a.pk and c.hour >= to_timestamp(floor(a.lo / ${HOUR_MS}) * ${HOUR_MS / 1000})
        and c.hour <= to_timestamp(a.hi / 1000) and k.t0 >= a.lo and k.t0 <= a.hi and ${inRun(sql`k.seq`)}
    ) s`.execute(db)
  for (const r of rows) out[Number(r.i) - 1]?.add(Number(r.seq))
  return out
}

/**
 * True when a recorded seq gap of the device already covers (part of) this run. seq_gaps is the
 * telemetry module's PostgreSQL table whatever the store: this takes the caller's executor, so the
 * ingest asks it inside its locked transaction.
 */
export async function gapRecorded(db: Kysely<Database>, devicePk: number, r: SeqRun): Promise<boolean> {
  const rows = await sql`
    select 1 from seq_gaps
    where device_pk = ${devicePk}::int and from_seq <= ${r.to} and to_seq >= ${r.from}
      and to_ts >= ${iso(r.fromTs)}::timestamptz and from_ts <= ${iso(r.toTs)}::timestamptz
    limit 1`.execute(db)
  return rows.rows.length > 0
}
