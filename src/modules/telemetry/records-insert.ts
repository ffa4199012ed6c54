import { CompiledQuery, type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { Datagram } from './datagram.ts'
import { type TableColumn, TelemetryRecordArray } from './telemetry-record-array.ts'

/**
 * Rows per statement: ~450 KB of parameter for ingest-shaped rows (10 samples of V and I). 5,000 a statement (a whole
 * default ingest batch) measured no cheaper on either engine, and keeps 5× the bytes in memory.
 */
const ROWS_PER_RECORDS_INSERT = 1000

interface Prepared {
  encoder: TelemetryRecordArray
  statement: string
}

/**
 * A parameter that both drivers send in binary format, as it is. node-postgres does so with any
 * Buffer. PGlite does so with a Buffer its serializer for the parameter's type returns, but it
 * has no serializer for telemetry[] when the table was created after it started (it reads the
 * array types once, at start): it then sends param.toString(), which here is the Buffer again.
 */
function binaryParam(bytes: Buffer): Buffer {
  Object.defineProperty(bytes, 'toString', { value: () => bytes })
  return bytes
}

/**
 * Writes telemetry rows with one short, constant statement: all rows in one binary telemetry[]
 * parameter, unnested into the table. PostgreSQL reads the values as they are (no parsing of
 * text, no 17 parameters a row), and parses and plans a 360-byte statement instead of ~100 KB.
 */
export class RecordsInsert {
  private prepared: Promise<Prepared> | null = null

  constructor(private readonly db: Kysely<Database>) {}

  /** Writes the rows, through `db` when given (a transaction: compaction writes its rows in one). */
  async write(datagrams: readonly Datagram[], db: Kysely<Database> = this.db): Promise<void> {
    const { encoder, statement } = await this.prepare()
    for (let i = 0; i < datagrams.length; i += ROWS_PER_RECORDS_INSERT) {
      const rows = encoder.encode(datagrams.slice(i, i + ROWS_PER_RECORDS_INSERT))
      await db.executeQuery(CompiledQuery.raw(statement, [binaryParam(rows)]))
    }
  }

  /** Reads the row type now: before a transaction, on PGlite's one connection, it must not wait for it. */
  async ready(): Promise<void> {
    await this.prepare()
  }

  /** The table's row type and live columns, read once per store (a failed read is retried). */
  private prepare(): Promise<Prepared> {
    this.prepared ??= readRowType(this.db).then(
      ({ rowTypeOid, columns }) => {
        const encoder = new TelemetryRecordArray(rowTypeOid, columns)
        const list = encoder.written.join(',')
        const statement = `insert into telemetry (${list}) select ${list} from unnest($1::telemetry[]) on conflict do nothing`
        return { encoder, statement }
      },
      (error: unknown) => {
        this.prepared = null
        throw error
      },
    )
    return this.prepared
  }
}

async function readRowType(db: Kysely<Database>): Promise<{ rowTypeOid: number; columns: TableColumn[] }> {
  const { rows } = await sql<{ row_type: string; name: string; type_oid: string }>`
    select c.reltype::text as row_type, a.attname::text as name, a.atttypid::text as type_oid
    from pg_class c join pg_attribute a on a.attrelid = c.oid
    where c.oid = 'telemetry'::regclass and a.attnum > 0 and not a.attisdropped
    order by a.attnum`.execute(db)
  if (rows.length === 0) throw new Error('telemetry: no columns in pg_attribute')
  return {
    rowTypeOid: Number(rows[0]?.row_type),
    columns: rows.map((r) => ({ name: r.name, typeOid: Number(r.type_oid) })),
  }
}
