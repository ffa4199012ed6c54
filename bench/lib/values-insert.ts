import { CompiledQuery, type Kysely } from 'kysely'
import {
  type Datagram,
  encodeFloat8Array,
  FLAG_OUT_OF_RANGE,
  PostgresTelemetryStore,
  regularStep,
  STORED_TYPES,
} from '../../src/modules/telemetry/index.ts'
import type { Database } from '../../src/platform/db/index.ts'

const COLUMNS = [
  'device_pk',
  't0',
  'seq',
  'n',
  'step_ms',
  'offsets_ms',
  ...STORED_TYPES,
  'other',
  'flags',
] as const
/** Rows per INSERT: 17 parameters each stays far below PostgreSQL's 65,535. */
const ROWS_PER_INSERT = 1000

function rowParams(d: Datagram): unknown[] {
  const step = regularStep(d.times)
  const offsets = step === null ? d.times.map((t) => t - d.t0) : null
  const params: unknown[] = [d.devicePk, new Date(d.t0).toISOString(), d.seq, d.times.length, step, offsets]
  // A binary parameter needs no cast: PostgreSQL types it from its target column, float8[].
  for (const type of STORED_TYPES) {
    const values = d.values[type]
    params.push(values ? encodeFloat8Array(values) : null)
  }
  params.push(d.other ? JSON.stringify(d.other) : null, d.outOfRange.length > 0 ? FLAG_OUT_OF_RANGE : 0)
  return params
}

/**
 * Writes telemetry rows as multi-row VALUES, 17 parameters a row (the float8[] ones binary): a
 * ~100 KB statement per 1,000 rows that PostgreSQL parses and plans every time. The write path
 * before RecordsInsert, kept as the baseline of bench/telemetry-write.ts.
 */
export async function insertAsValues(db: Kysely<Database>, datagrams: readonly Datagram[]): Promise<void> {
  for (let i = 0; i < datagrams.length; i += ROWS_PER_INSERT) {
    const chunk = datagrams.slice(i, i + ROWS_PER_INSERT)
    const params: unknown[] = []
    const tuples: string[] = []
    for (const d of chunk) {
      const values = rowParams(d)
      const base = params.length
      tuples.push(`(${values.map((_, k) => `$${base + k + 1}`).join(',')})`)
      params.push(...values)
    }
    // Hand-built for speed (the builder costs ~45 µs per row); only placeholders are interpolated.
    const text = `insert into telemetry (${COLUMNS.join(',')}) values ${tuples.join(',')} on conflict do nothing`
    await db.executeQuery(CompiledQuery.raw(text, params))
  }
}

/**
 * PostgresTelemetryStore writing its rows with the statement before (insertAsValues): the baseline
 * of bench/telemetry-write.ts, and what test/unit/telemetry/telemetry-write.test.ts compares the default against.
 */
export class ValuesTelemetryStore extends PostgresTelemetryStore {
  protected override insertRows(datagrams: Datagram[]): Promise<void> {
    return insertAsValues(this.db, datagrams)
  }
}
