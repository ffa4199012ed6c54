import type { Datagram } from './datagram.ts'
import { parseFloat8Array } from './float8-array.ts'
import { STORED_TYPES, type StoredType } from './measurement-types.ts'

/**
 * Compact rows: the samples of every datagram of a device whose t0 lies in one hour (a unit),
 * moved into rows of the same telemetry table, one per hour of sample time (t0 its first sample's; a datagram near the
 * end of the hour spills into the next ones). They are ordinary rows — a step or
 * offsets, one float8[] per type — so every read (/metrics, rollups, energy) reads them as it
 * reads raw rows; TOAST compresses their long arrays (docs/PERFORMANCE.md). Their seq is negative
 * (devices send 0…2^32 − 1): -2 - k for the hour k hours after the unit's, so two units never
 * write the same key.
 */

export const HOUR_MS = 3_600_000
/** In flags of a raw row whose samples moved into compact rows: the row stays, as its key. */
export const FLAG_COMPACTED = 2
/** n is a smallint. */
const MAX_ROW_SAMPLES = 32_767

/** A telemetry row as compaction reads it: times in ms, float8[] columns as PostgreSQL prints them. */
export type StoredRow = {
  t0: number | string
  seq: number | string
  n: number
  step_ms: number | null
  offsets: string | null
  other: Record<string, (number | null)[]> | null
} & Record<StoredType, string | null>

interface Sample {
  t: number
  values: Partial<Record<StoredType, number | null>>
  other: Record<string, number | null> | null
}

/** The seq of a unit's compact row holding samples of the hour of `t0`. */
export const compactSeq = (unitHour: number, t0: number) =>
  -2 - (Math.floor(t0 / HOUR_MS) * HOUR_MS - unitHour) / HOUR_MS

/** The samples of a row, in its order. */
function samplesOf(row: StoredRow): Sample[] {
  const t0 = Number(row.t0)
  const offsets = row.offsets === null ? null : parseFloat8Array(row.offsets)
  const columns = STORED_TYPES.map(
    (type) => [type, row[type] === null ? null : parseFloat8Array(row[type])] as const,
  )
  const out: Sample[] = []
  for (let i = 0; i < row.n; i++) {
    const offset = offsets ? offsets[i] : row.step_ms === null ? null : i * Number(row.step_ms)
    if (offset === null || offset === undefined) continue
    const values: Sample['values'] = {}
    for (const [type, column] of columns) if (column) values[type] = column[i] ?? null
    let other: Sample['other'] = null
    for (const [type, column] of Object.entries(row.other ?? {})) {
      other ??= {}
      other[type] = typeof column[i] === 'number' ? (column[i] as number) : null
    }
    out.push({ t: t0 + offset, values, other })
  }
  return out
}

/** One row (a datagram for the row encoder) holding these samples, sorted by time, of the hour. */
function rowOf(devicePk: number, unitHour: number, hour: number, samples: Sample[]): Datagram {
  const values: Datagram['values'] = {}
  for (const type of STORED_TYPES) {
    if (samples.some((s) => s.values[type] != null)) values[type] = samples.map((s) => s.values[type] ?? null)
  }
  let other: Datagram['other'] = null
  const otherTypes = new Set(samples.flatMap((s) => Object.keys(s.other ?? {})))
  for (const type of otherTypes) {
    if (!samples.some((s) => s.other?.[type] != null)) continue
    other ??= {}
    other[type] = samples.map((s) => s.other?.[type] ?? null)
  }
  return {
    devicePk,
    deviceId: '',
    seq: compactSeq(unitHour, hour),
    t0: samples[0]?.t ?? hour, // the row encoder takes t0 as the first sample's time
    times: samples.map((s) => s.t),
    values,
    other,
    outOfRange: [],
  }
}

/**
 * The compact rows of a unit from its rows (compact ones first, then raw ones by t0 and seq):
 * every sample kept as it is, stably sorted by time. Undefined when they do not fit compact rows
 * (a sample before the unit's hour, or more samples in an hour than a row holds): the unit then
 * stays raw, which reads the same.
 */
export function compactRows(
  devicePk: number,
  unitHour: number,
  rows: readonly StoredRow[],
): Datagram[] | undefined {
  const byHour = new Map<number, Sample[]>()
  for (const row of rows) {
    for (const sample of samplesOf(row)) {
      const hour = Math.floor(sample.t / HOUR_MS) * HOUR_MS
      const k = (hour - unitHour) / HOUR_MS
      if (k < 0 || k > 2) return undefined
      const samples = byHour.get(hour) ?? []
      samples.push(sample)
      byHour.set(hour, samples)
    }
  }
  const out: Datagram[] = []
  for (const [hour, samples] of [...byHour].sort((a, b) => a[0] - b[0])) {
    if (samples.length > MAX_ROW_SAMPLES) return undefined
    samples.sort((a, b) => a.t - b.t) // stable: ties keep their order
    out.push(rowOf(devicePk, unitHour, hour, samples))
  }
  return out
}
