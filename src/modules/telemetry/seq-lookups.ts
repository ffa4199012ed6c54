import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { compactedSeqs } from './compacted-keys.ts'
import type { SeqRun } from './store.ts'

/** A datagram's first sample (t0) precedes its envelope ts by at most this. */
export const SEQ_SPAN_MS = 3_600_000
const iso = (ms: number) => new Date(ms).toISOString()

/**
 * The seqs of a run stored in the PostgreSQL telemetry table (by any replica): PostgresTelemetryStore's.
 * Compacted datagrams count (their keys in telemetry_compacted_keys, or the stubs compaction left
 * before); compact rows (seq < 0) are no datagram's.
 */
export async function storedSeqsInTable(
  db: Kysely<Database>,
  devicePk: number,
  r: SeqRun,
): Promise<Set<number>> {
  const seqs = (column: RawBuilder<unknown>) =>
    r.from <= r.to
      ? sql`${column} between ${r.from} and ${r.to}`
      : sql`(${column} >= ${r.from} or ${column} <= ${r.to})`
  const rows = await sql<{ seq: string | number }>`
    select seq from telemetry
    where device_pk = ${devicePk}::int and t0 >= ${iso(r.fromTs - SEQ_SPAN_MS)}::timestamptz
      and t0 <= ${iso(r.toTs)}::timestamptz and seq >= 0 and ${seqs(sql`seq`)}
    union all ${compactedSeqs(devicePk, r.fromTs - SEQ_SPAN_MS, r.toTs, seqs(sql`k.seq`))}`.execute(db)
  return new Set(rows.rows.map((x) => Number(x.seq)))
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
