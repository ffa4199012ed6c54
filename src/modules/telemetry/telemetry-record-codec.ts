import { type Datagram, FLAG_OUT_OF_RANGE, regularStep } from './datagram.ts'
import { STORED_TYPES } from './measurement-types.ts'
import type { PgBinaryWriter } from './pg-binary-writer.ts'

/**
 * Telemetry rows as the fields of PostgreSQL's binary record format (record_recv): per column an
 * oid, an int32 length (-1 for NULL) and the value in its type's binary format. One codec per
 * column name; TelemetryRecords puts them in the order of the live table.
 */

export const OID = {
  int2: 21,
  int4: 23,
  int8: 20,
  float8: 701,
  timestamptz: 1184,
  jsonb: 3802,
  int4Array: 1007,
  float8Array: 1022,
} as const

/** A datagram with what more than one column derives from it. */
export interface RowSource {
  d: Datagram
  /** regularStep(d.times): null when the times are irregular (offsets_ms then holds them). */
  step: number | null
  /** JSON text of d.other, or null. */
  json: string | null
}

export const rowSource = (d: Datagram): RowSource => ({
  d,
  step: regularStep(d.times),
  json: d.other ? JSON.stringify(d.other) : null,
})

/** Writes one column's value: its length (or -1) and bytes. Room is reserved by rowBytesBound. */
type WriteValue = (w: PgBinaryWriter, row: RowSource) => void

export interface ColumnCodec {
  typeOid: number
  write: WriteValue
}

const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix ms. */
const PG_EPOCH_MS = 946_684_800_000

/** The server rejects such values in text; the binary format would wrap them silently. */
function outOfRange(column: string, value: unknown, type: string): never {
  throw new RangeError(`telemetry.${column}: ${String(value)} is not a valid ${type}`)
}

function int4(column: string, v: number): number {
  if (v !== (v | 0)) outOfRange(column, v, 'int4')
  return v
}

function int2(column: string, v: number): number {
  if (v !== (v << 16) >> 16) outOfRange(column, v, 'int2')
  return v
}

const writeNull: WriteValue = (w) => w.int32(-1)

function writeInt4(w: PgBinaryWriter, column: string, v: number): void {
  w.int32(4)
  w.int32(int4(column, v))
}

function writeInt2(w: PgBinaryWriter, column: string, v: number): void {
  w.int32(2)
  w.int16(int2(column, v))
}

/** array_recv header of a one-dimensional array; returns where the has-nulls flag is. */
function arrayHeader(w: PgBinaryWriter, elementOid: number, n: number): number {
  w.int32(n === 0 ? 0 : 1) // an empty array has no dimensions
  const flagAt = w.at
  w.int32(0)
  w.uint32(elementOid)
  if (n > 0) {
    w.int32(n)
    w.int32(1) // lower bound
  }
  return flagAt
}

/** A float8[] field: its int32 length, then the array (array_recv), or -1 for NULL. */
export function writeFloat8Array(
  w: PgBinaryWriter,
  values: readonly (number | null | undefined)[] | undefined,
): void {
  if (!values) {
    w.int32(-1)
    return
  }
  const length = w.beginLength()
  const flagAt = arrayHeader(w, OID.float8, values.length)
  let nulls = false
  for (const v of values) {
    if (v == null) {
      w.int32(-1)
      nulls = true
    } else {
      w.int32(8)
      w.float64(v)
    }
  }
  if (nulls) w.setInt32At(flagAt, 1)
  w.endLength(length)
}

/** Sample times relative to t0, for irregular datagrams only. */
function writeOffsets(w: PgBinaryWriter, { d, step }: RowSource): void {
  if (step !== null) {
    w.int32(-1)
    return
  }
  const length = w.beginLength()
  arrayHeader(w, OID.int4, d.times.length)
  for (const t of d.times) writeInt4(w, 'offsets_ms', t - d.t0)
  w.endLength(length)
}

function writeT0(w: PgBinaryWriter, { d }: RowSource): void {
  // Whole ms, as new Date(t0) keeps them; then µs since 2000, exact beyond 2^53 thanks to BigInt.
  const ms = Math.trunc(d.t0)
  if (!Number.isFinite(ms)) outOfRange('t0', d.t0, 'timestamptz')
  w.int32(8)
  w.int64(BigInt(ms - PG_EPOCH_MS) * 1000n)
}

function writeSeq(w: PgBinaryWriter, { d }: RowSource): void {
  if (!Number.isInteger(d.seq)) outOfRange('seq', d.seq, 'int8')
  const seq = BigInt(d.seq)
  if (seq < INT8_MIN || seq > INT8_MAX) outOfRange('seq', d.seq, 'int8')
  w.int32(8)
  w.int64(seq)
}

function writeOther(w: PgBinaryWriter, { json }: RowSource): void {
  if (json === null) {
    w.int32(-1)
    return
  }
  const length = w.beginLength()
  w.int8(1) // jsonb_recv's format version, then the JSON text
  w.utf8(json)
  w.endLength(length)
}

/** The codec of every column the store writes, by name. */
export const COLUMN_CODECS: Readonly<Record<string, ColumnCodec>> = {
  device_pk: { typeOid: OID.int4, write: (w, { d }) => writeInt4(w, 'device_pk', d.devicePk) },
  t0: { typeOid: OID.timestamptz, write: writeT0 },
  seq: { typeOid: OID.int8, write: writeSeq },
  n: { typeOid: OID.int2, write: (w, { d }) => writeInt2(w, 'n', d.times.length) },
  step_ms: {
    typeOid: OID.int4,
    write: (w, { step }) => (step === null ? w.int32(-1) : writeInt4(w, 'step_ms', step)),
  },
  offsets_ms: { typeOid: OID.int4Array, write: writeOffsets },
  ...Object.fromEntries(
    STORED_TYPES.map((type): [string, ColumnCodec] => [
      type,
      { typeOid: OID.float8Array, write: (w, { d }) => writeFloat8Array(w, d.values[type]) },
    ]),
  ),
  other: { typeOid: OID.jsonb, write: writeOther },
  flags: {
    typeOid: OID.int2,
    write: (w, { d }) => writeInt2(w, 'flags', d.outOfRange.length > 0 ? FLAG_OUT_OF_RANGE : 0),
  },
}

/** A NULL of a column the store does not know (it is left out of the insert: its default applies). */
export const nullCodec = (typeOid: number): ColumnCodec => ({ typeOid, write: writeNull })

/** At least the bytes of one record of `columns` columns (element length prefix included). */
export function rowBytesBound({ d, json }: RowSource, columns: number): number {
  let bytes = 8 + 8 * columns + 64 // length, column count; oid + length per column; the scalars
  bytes += 20 + 8 * d.times.length // offsets_ms
  for (const type of STORED_TYPES) bytes += 20 + 12 * (d.values[type]?.length ?? 0)
  if (json !== null) bytes += 1 + 3 * json.length
  return bytes
}
