import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { PGlite } from '@electric-sql/pglite'
import { Kysely, sql } from 'kysely'
import { PGliteDialect } from 'kysely-pglite-dialect'
import { ValuesTelemetryStore } from '../../../bench/lib/values-insert.ts'
import {
  type Datagram,
  type Measurement,
  PostgresTelemetryStore,
  STORED_TYPES,
  toDatagram,
} from '../../../src/modules/telemetry/index.ts'
import { connectDatabase, type Database, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../../helpers/env.ts'

/**
 * PostgresTelemetryStore.write through its two statements: 'records' (the default: one binary
 * telemetry[] parameter) must store exactly what 'values' (multi-row VALUES) stores, byte for
 * byte as PostgreSQL prints the columns, and be just as idempotent.
 */

const ENGINE = realDatabaseUrl ? 'PostgreSQL' : 'PGlite'
const T0 = Date.UTC(2025, 2, 1, 12)

interface TestDb {
  db: Kysely<Database>
  close: () => Promise<void>
}

async function openDb(): Promise<TestDb> {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const { db } = await connectDatabase({
    databaseUrl: schema?.url,
    dataDir: dir.path,
    poolMax: 2,
    inMemory: true,
  })
  await migrateToLatest(db)
  return {
    db,
    close: async () => {
      await db.destroy()
      await schema?.drop()
      dir.remove()
    },
  }
}

async function addDevice(db: Kysely<Database>): Promise<number> {
  const id = uniqueName('tw')
  const { rows } = await sql<{ id: number }>`
    insert into devices (device_id, device_name) values (${id}, ${id}) returning id`.execute(db)
  return Number(rows[0]?.id)
}

/** A device's rows with every column but device_pk as PostgreSQL prints it, in key order. */
async function printedRows(db: Kysely<Database>, pk: number): Promise<string[]> {
  const columns = ['t0', 'seq', 'n', 'step_ms', 'offsets_ms', ...STORED_TYPES, 'other', 'flags']
  const { rows } = await sql<{ row: string }>`
    select concat_ws(' | ', ${sql.join(columns.map((c) => sql`coalesce(${sql.ref(c)}::text, 'NULL')`))}) as row
    from telemetry where device_pk = ${pk} order by t0, seq`.execute(db)
  return rows.map((r) => r.row)
}

/** Every sample type, nulls inside arrays, special doubles, irregular times, an unknown type. */
function everyColumn(pk: number, seq: number, t0: number): Datagram {
  const m: Measurement[] = []
  const times = [t0, t0 + 700, t0 + 2500, t0 + 2501, t0 + 4000] // irregular: offsets_ms
  const specials = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]
  STORED_TYPES.forEach((type, k) => {
    times.forEach((t, i) => {
      // Each type lacks one sample (a NULL element), a different one per type.
      if (i === k % times.length) return
      m.push({ t, type, val: type === 'voltage_dc' ? (specials[i] as number) : k * 10.25 + i / 3 })
    })
  })
  m.push({ t: times[1] as number, type: 'hum"idity\\ 湿度 🌡', val: 61.5 })
  m.push({ t: times[3] as number, type: 'température', val: -1e-300 })
  m.push({ t: times[2] as number, type: "it's\n", val: Number.NaN }) // JSON has no NaN: null
  return toDatagram(pk, 'tw', seq, m)
}

/** Regular 1 s samples of DC voltage and current (no offsets, no other, flags 0 unless out of range). */
function regular(pk: number, seq: number, t0: number, n = 10, volts = 750): Datagram {
  const m: Measurement[] = []
  for (let i = 0; i < n; i++) {
    m.push({ t: t0 + i * 1000, type: 'voltage_dc', val: volts + i / 100 })
    m.push({ t: t0 + i * 1000, type: 'current_dc', val: -12.5 + i })
  }
  return toDatagram(pk, 'tw', seq, m)
}

describe(`telemetry writes (${ENGINE})`, () => {
  let t: TestDb
  let records: PostgresTelemetryStore
  let values: PostgresTelemetryStore

  before(async () => {
    t = await openDb()
    records = new PostgresTelemetryStore(t.db)
    values = new ValuesTelemetryStore(t.db)
  })
  after(() => t.close())

  /** Writes the datagrams through both statements (a device each); returns both devices' rows. */
  async function writeBoth(
    make: (pk: number) => Datagram[],
  ): Promise<{ viaRecords: string[]; viaValues: string[] }> {
    const a = await addDevice(t.db)
    const b = await addDevice(t.db)
    await records.write(make(a))
    await values.write(make(b))
    return { viaRecords: await printedRows(t.db, a), viaValues: await printedRows(t.db, b) }
  }

  test('every column, NULLs and special values are stored as the VALUES statement stores them', async () => {
    const make = (pk: number) => [
      everyColumn(pk, 1, T0),
      regular(pk, 2, T0 + 60_000),
      regular(pk, 3, T0 + 120_000, 1), // one sample: step 0
      regular(pk, 4, T0 + 180_000, 3, 9999), // out of range: flags 1
      { ...regular(pk, -1, T0 + 240_000, 2), values: { voltage_dc: [], current_dc: [null, null] } },
    ]
    const { viaRecords, viaValues } = await writeBoth(make)
    assert.equal(viaRecords.length, 5)
    assert.deepEqual(viaRecords, viaValues)

    // And as the datagrams say, read back through the driver.
    const pk = await addDevice(t.db)
    const [full, reg, one, flagged] = make(pk) as Datagram[]
    await records.write(make(pk))
    const { rows } = await sql<Record<string, unknown>>`
      select * from telemetry where device_pk = ${pk} order by t0, seq`.execute(t.db)
    const row = (i: number) => rows[i] as Record<string, unknown>
    assert.equal((row(0).t0 as Date).getTime(), full?.t0)
    assert.equal(Number(row(0).seq), 1)
    assert.equal(row(0).n, 5)
    assert.equal(row(0).step_ms, null)
    assert.deepEqual(row(0).offsets_ms, [0, 700, 2500, 2501, 4000])
    for (const type of STORED_TYPES) assert.deepStrictEqual(row(0)[type], full?.values[type], type)
    assert.deepStrictEqual(row(0).voltage_dc, [
      null,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ])
    assert.deepStrictEqual(row(0).other, {
      'hum"idity\\ 湿度 🌡': [null, 61.5, null, null, null],
      température: [null, null, null, -1e-300, null],
      "it's\n": [null, null, null, null, null],
    })
    assert.equal(row(0).flags, 1) // pf 10.25 and more are out of range
    assert.deepEqual(
      [row(1).step_ms, row(1).offsets_ms, row(1).other, row(1).voltage_ac, row(1).flags],
      [1000, null, null, null, 0],
    )
    assert.deepStrictEqual(row(1).voltage_dc, reg?.values.voltage_dc)
    assert.deepEqual([row(2).n, row(2).step_ms], [1, 0])
    assert.deepStrictEqual(row(2).current_dc, one?.values.current_dc)
    assert.equal(row(3).flags, 1)
    assert.ok((flagged?.outOfRange.length ?? 0) > 0)
    assert.equal(Number(row(4).seq), -1)
    assert.deepStrictEqual([row(4).voltage_dc, row(4).current_dc], [[], [null, null]])
  })

  test('a key twice in one batch: the first row is stored, as with VALUES', async () => {
    const make = (pk: number) => [
      regular(pk, 7, T0, 5, 700),
      regular(pk, 8, T0 + 10_000, 5, 710),
      regular(pk, 7, T0, 5, 720), // the same (device, t0, seq), other values
      regular(pk, 7, T0, 5, 700), // an exact copy
    ]
    const { viaRecords, viaValues } = await writeBoth(make)
    assert.equal(viaRecords.length, 2)
    assert.match(viaRecords[0] as string, /\{700,/)
    assert.deepEqual(viaRecords, viaValues)
  })

  test('writing a batch again changes nothing: no row is added or rewritten', async () => {
    const pk = await addDevice(t.db)
    const batch = [everyColumn(pk, 1, T0), regular(pk, 2, T0 + 60_000), regular(pk, 3, T0 + 120_000)]
    await records.write(batch)
    const versions = async () =>
      (
        await sql<{ v: string }>`
          select xmin::text || ' ' || ctid::text as v from telemetry where device_pk = ${pk} order by seq`.execute(
          t.db,
        )
      ).rows.map((r) => r.v)
    const before = { rows: await printedRows(t.db, pk), versions: await versions() }
    await records.write(batch)
    await records.write([...batch].reverse())
    assert.deepEqual(await printedRows(t.db, pk), before.rows)
    assert.deepEqual(await versions(), before.versions)
  })

  test('2,500 rows in one write (three statements) equal the VALUES statement’s', async () => {
    const make = (pk: number) =>
      Array.from({ length: 2500 }, (_, i) =>
        i % 5 === 0 ? everyColumn(pk, i, T0 + i * 60_000) : regular(pk, i, T0 + i * 60_000, 10, 700 + i / 7),
      )
    const { viaRecords, viaValues } = await writeBoth(make)
    assert.equal(viaRecords.length, 2500)
    assert.deepEqual(viaRecords, viaValues)
  })

  test('values the columns cannot hold fail the write, as the server fails them in text', async () => {
    const pk = await addDevice(t.db)
    const bad: Datagram[] = [
      { ...regular(pk, 1, T0), seq: 1.5 },
      { ...regular(pk, 1, T0), seq: 2 ** 63 },
      { ...regular(pk, 1, T0), devicePk: 2 ** 31 },
      { ...regular(pk, 1, T0), t0: Number.NaN },
    ]
    for (const d of bad) {
      await assert.rejects(records.write([d]), RangeError)
      await assert.rejects(values.write([d]))
    }
    assert.deepEqual(await printedRows(t.db, pk), [])
  })
})

describe(`telemetry writes follow the table's live columns (${ENGINE})`, () => {
  let t: TestDb

  before(async () => {
    t = await openDb()
  })
  after(() => t.close())

  test('an added column gets its default; a dropped one is skipped; a changed type fails loudly', async () => {
    await sql`alter table telemetry add column gone int4`.execute(t.db)
    await sql`alter table telemetry add column quality int2 not null default 7`.execute(t.db)
    await sql`alter table telemetry add column note text`.execute(t.db)
    await sql`alter table telemetry drop column gone`.execute(t.db)
    const pk = await addDevice(t.db)
    await new PostgresTelemetryStore(t.db).write([regular(pk, 1, T0), everyColumn(pk, 2, T0 + 60_000)])
    const { rows } = await sql<{ seq: number; quality: number; note: string | null }>`
      select seq, quality, note from telemetry where device_pk = ${pk} order by seq`.execute(t.db)
    assert.deepEqual(
      rows.map((r) => [Number(r.seq), r.quality, r.note]),
      [
        [1, 7, null],
        [2, 7, null],
      ],
    )

    await sql`alter table telemetry alter column flags type int4`.execute(t.db)
    const store = new PostgresTelemetryStore(t.db)
    await assert.rejects(store.write([regular(pk, 3, T0)]), /telemetry\.flags has type oid 23/)
    await assert.rejects(store.write([regular(pk, 3, T0)]), /telemetry\.flags/)
  })
})

describe('telemetry writes on a PGlite that knew telemetry[] at start (a restart)', {
  skip: !!realDatabaseUrl,
}, () => {
  test('its array serializer passes the binary parameter through', async () => {
    const pglite = new PGlite()
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
    try {
      await migrateToLatest(db)
      // What PGlite does at start on an existing data directory: serializers for every array type.
      await pglite.refreshArrayTypes()
      const pk = await addDevice(db)
      await new PostgresTelemetryStore(db).write([everyColumn(pk, 1, T0), regular(pk, 2, T0 + 60_000)])
      assert.equal((await printedRows(db, pk)).length, 2)
    } finally {
      await db.destroy()
    }
  })
})
