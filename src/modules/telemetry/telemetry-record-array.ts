import type { Datagram } from './datagram.ts'
import { PgBinaryWriter } from './pg-binary-writer.ts'
import {
  COLUMN_CODECS,
  type ColumnCodec,
  nullCodec,
  rowBytesBound,
  rowSource,
} from './telemetry-record-codec.ts'

/** A live (not dropped) column of the telemetry table, as pg_attribute lists it. */
export interface TableColumn {
  name: string
  typeOid: number
}

/**
 * Datagrams as one telemetry[] value in PostgreSQL's binary array format (array_recv), each
 * element a record of the table's row type (record_recv). record_recv wants exactly the table's
 * live columns in attnum order, each with its type's oid, so the encoder is built from the
 * catalog rather than from a list of ours:
 * - a column we write whose type changed, or that is gone, fails the first write loudly (the
 *   bytes would no longer match it);
 * - a column we do not know (a later migration's) is sent as NULL and left out of the insert's
 *   column list, so it gets its default as it did with the VALUES statement; one that is NOT
 *   NULL without a default fails every insert, as it did there.
 */
export class TelemetryRecordArray {
  /** The columns written, in table order: the insert's column list. */
  readonly written: readonly string[]
  private readonly codecs: readonly ColumnCodec[]

  constructor(
    private readonly rowTypeOid: number,
    columns: readonly TableColumn[],
  ) {
    const names = new Set(columns.map((c) => c.name))
    const missing = Object.keys(COLUMN_CODECS).filter((name) => !names.has(name))
    if (missing.length > 0) throw new Error(`telemetry table lacks column(s) ${missing.join(', ')}`)
    this.codecs = columns.map(({ name, typeOid }) => {
      const codec = COLUMN_CODECS[name]
      if (!codec) return nullCodec(typeOid)
      if (codec.typeOid !== typeOid) {
        throw new Error(
          `telemetry.${name} has type oid ${typeOid}, the binary row encoder writes oid ${codec.typeOid}`,
        )
      }
      return codec
    })
    this.written = columns.filter((c) => COLUMN_CODECS[c.name]).map((c) => c.name)
  }

  encode(datagrams: readonly Datagram[]): Buffer {
    const columns = this.codecs.length
    const w = new PgBinaryWriter(datagrams.length * 512)
    w.int32(datagrams.length === 0 ? 0 : 1) // dimensions
    w.int32(0) // no NULL rows
    w.uint32(this.rowTypeOid)
    if (datagrams.length > 0) {
      w.int32(datagrams.length)
      w.int32(1) // lower bound
    }
    for (const d of datagrams) {
      const row = rowSource(d)
      w.ensure(rowBytesBound(row, columns))
      const length = w.beginLength()
      w.int32(columns)
      for (const codec of this.codecs) {
        w.uint32(codec.typeOid)
        codec.write(w, row)
      }
      w.endLength(length)
    }
    return w.bytes()
  }
}
