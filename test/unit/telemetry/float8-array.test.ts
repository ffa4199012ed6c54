import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { type Kysely, sql } from 'kysely'
import { ValuesTelemetryStore } from '../../../bench/lib/values-insert.ts'
import type { Datagram } from '../../../src/modules/telemetry/datagram.ts'
import { parseFloat8Array } from '../../../src/modules/telemetry/float8-array.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { connectDatabase, type Database, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../../helpers/env.ts'

/**
 * The float8[] columns go out in PostgreSQL's binary array format (inside binary records, or as
 * parameters of their own with bench/lib/values-insert.ts) and come back as text parsed by the store
 * itself. Both must keep every double exactly, on PGlite and on PostgreSQL.
 */

const T0 = Date.UTC(2024, 0, 15, 8)

const EDGE_VALUES = [
  0,
  -0,
  1e-320, // subnormal
  5e-324, // the smallest subnormal
  2.2250738585072014e-308, // the smallest normal
  1.7976931348623157e308,
  -1.7976931348623157e308,
  0.1 + 0.2,
  -42.125,
  750,
  -5000,
  1e21,
  1 / 3e7, // 17 significant digits
  2 ** 70,
  Number.MAX_SAFE_INTEGER,
]

let seq = 0

/** A datagram of regular 1 s samples with the given columns (all of one length). */
function datagramOf(devicePk: number, values: Datagram['values']): Datagram {
  const n = Math.max(...Object.values(values).map((v) => v?.length ?? 0))
  const t0 = T0 + seq * 6 * 3_600_000
  return {
    devicePk,
    deviceId: 'float8',
    seq: seq++,
    t0,
    times: Array.from({ length: n }, (_, i) => t0 + i * 1000),
    values,
    other: null,
    outOfRange: [],
  }
}

const ENGINE = realDatabaseUrl ? 'PostgreSQL' : 'PGlite'
const WRITE_STATEMENTS = ['records', 'values'] as const

for (const writeStatement of WRITE_STATEMENTS)
  describe(`float8[] columns of the telemetry store (${ENGINE}, ${writeStatement})`, () => {
    let db: Kysely<Database>
    let store: PostgresTelemetryStore
    let pk: number
    let cleanup: () => Promise<void>

    before(async () => {
      const dir = tempDir()
      const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
      ;({ db } = await connectDatabase({
        databaseUrl: schema?.url,
        dataDir: dir.path,
        poolMax: 2,
        inMemory: true,
      }))
      await migrateToLatest(db)
      const id = uniqueName('f8')
      const { rows } = await sql<{ id: number }>`
      insert into devices (device_id, device_name) values (${id}, ${id}) returning id`.execute(db)
      pk = Number(rows[0]?.id)
      store = writeStatement === 'values' ? new ValuesTelemetryStore(db) : new PostgresTelemetryStore(db)
      cleanup = async () => {
        await db.destroy()
        await schema?.drop()
        dir.remove()
      }
    })
    after(() => cleanup())

    /** The stored columns of a datagram, parsed by the driver (independently of the store's parser). */
    async function stored(d: Datagram): Promise<Record<string, unknown>> {
      const { rows } = await sql<Record<string, unknown>>`
      select voltage_dc, current_dc, voltage_ac, current_ac, pf from telemetry
      where device_pk = ${d.devicePk} and seq = ${d.seq}`.execute(db)
      assert.equal(rows.length, 1)
      return rows[0] as Record<string, unknown>
    }

    /**
     * The voltages of a datagram as the store's parser reads the text PostgreSQL prints (the energy
     * read path; power itself leaves out non-finite and absurd readings, see power.ts).
     */
    async function voltagesRead(d: Datagram): Promise<{ t: number; p: number }[]> {
      const { rows } = await sql<{ v: string }>`
      select voltage_dc::text as v from telemetry where device_pk = ${d.devicePk} and seq = ${d.seq}`.execute(
        db,
      )
      const values = parseFloat8Array((rows[0] as { v: string }).v)
      return values.flatMap((p, i) => (p === null ? [] : [{ t: d.times[i] as number, p }]))
    }

    test('edge values are stored and read back bit-exactly, -0 and subnormals included', async () => {
      const voltages = [...EDGE_VALUES, null, ...EDGE_VALUES.map((v) => -v)]
      const d = datagramOf(pk, { voltage_dc: voltages, current_dc: voltages.map(() => 1) })
      await store.write([d])
      const row = await stored(d)
      assert.deepStrictEqual(row.voltage_dc, voltages)
      assert.deepStrictEqual(row.voltage_ac, null)
      const expected = voltages.flatMap((v, i) => (v === null ? [] : [{ t: d.times[i] as number, p: v }]))
      assert.deepStrictEqual(await voltagesRead(d), expected)
    })

    test('a long array of random doubles round trips', async () => {
      const voltages = fc.sample(fc.double({ noNaN: true, noDefaultInfinity: true }), {
        numRuns: 10_000,
        seed: 7,
      })
      const d = datagramOf(pk, { voltage_dc: voltages, current_dc: voltages.map(() => 1) })
      await store.write([d])
      assert.deepStrictEqual((await stored(d)).voltage_dc, voltages)
      const read = await voltagesRead(d)
      assert.equal(read.length, voltages.length)
      for (const [i, s] of read.entries())
        assert.ok(Object.is(s.p, voltages[i]), `sample ${i}: ${s.p} ≠ ${voltages[i]}`)
    })

    test('many rows of arrays with nulls, NaN and infinities in one insert', async () => {
      const column = fc.array(fc.option(fc.double(), { nil: null }), { minLength: 1, maxLength: 30 })
      const datagrams = fc
        .sample(fc.tuple(column, column), { numRuns: 300, seed: 11 })
        .map(([v, i]) => datagramOf(pk, { voltage_dc: v, current_ac: i }))
      await store.write(datagrams)
      for (const d of datagrams) {
        const row = await stored(d)
        assert.deepStrictEqual(row.voltage_dc, d.values.voltage_dc)
        assert.deepStrictEqual(row.current_ac, d.values.current_ac)
      }
    })

    test('empty and all-null arrays; AC samples from the text PostgreSQL prints', async () => {
      const d = datagramOf(pk, {
        voltage_dc: [null, null],
        current_dc: [],
        voltage_ac: [230, 230.5],
        current_ac: [2, null],
        pf: [-0.5, 1],
      })
      await store.write([d])
      const row = await stored(d)
      assert.deepStrictEqual(row.voltage_dc, [null, null])
      assert.deepStrictEqual(row.current_dc, [])
      // Sample 2 lacks a current: no power.
      assert.deepStrictEqual(await store.powerSamples(pk, d.t0, d.t0 + 2000), [
        { t: d.t0, p: -230, s: 460, q: Math.sqrt(460 ** 2 - 230 ** 2), signed: false },
      ])
    })

    test('NaN, infinities and explicit bounds written by SQL are read as PostgreSQL prints them', async () => {
      const t0 = T0 - 3_600_000
      await sql`
      insert into telemetry (device_pk, t0, seq, n, step_ms, voltage_dc, current_dc) values
        (${pk}, ${new Date(t0).toISOString()}, -1, 4, 1000,
          '{NaN,Infinity,-Infinity,1e+300}'::float8[], '{1,1,1,1}'::float8[]),
        (${pk}, ${new Date(t0 + 10_000).toISOString()}, -2, 2, 1000,
          '[0:1]={-0,2.5}'::float8[], '[5:6]={1,2}'::float8[])`.execute(db)
      const { rows } = await sql<{ v: string }>`
      select voltage_dc::text as v from telemetry where device_pk = ${pk} and seq in (-1, -2) order by seq desc`.execute(
        db,
      )
      assert.deepStrictEqual(
        rows.map((r) => parseFloat8Array(r.v)),
        [
          [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e300],
          [-0, 2.5],
        ],
      )
      // Power leaves out what is not a finite, plausible reading (NaN, ±∞, 1e300 V): one function, power.ts.
      const read = await store.powerSamples(pk, t0, t0 + 12_000)
      assert.deepStrictEqual(read, [
        { t: t0 + 10_000, p: -0 },
        { t: t0 + 11_000, p: 5 },
      ])
    })
  })
