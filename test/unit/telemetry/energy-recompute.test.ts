import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type Kysely, type KyselyPlugin, sql } from 'kysely'
import pino from 'pino'
import { loadConfig } from '../../../src/config.ts'
import { DevicesService } from '../../../src/modules/devices/index.ts'
import { createTelemetryModule, type Datagram, toDatagram } from '../../../src/modules/telemetry/index.ts'
import { connectDatabase, type Database, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../../helpers/env.ts'

const SEC = 1000
const MIN = 60 * SEC
const I = 5 * MIN
const H0 = Date.UTC(2024, 0, 15, 8)
const DC = { voltage_dc: 750, current_dc: 300 } // 225 kW
const wh = (watts: number, ms: number) => (watts * ms) / 3_600_000

function assertClose(actual: number | null | undefined, expected: number, what: string): void {
  assert.ok(typeof actual === 'number', `${what}: expected ${expected}, got ${actual}`)
  assert.ok(
    Math.abs(actual - expected) <= Math.abs(expected) * 1e-9 + 1e-9,
    `${what}: ${actual} ≠ ${expected}`,
  )
}

/** Datagrams of 10 one-second samples of constant values covering [from, to] inclusive. */
function datagrams(pk: number, id: string, from: number, to: number, values: Record<string, number>) {
  const out: Datagram[] = []
  for (let t = from, seq = 0; t <= to; t += 10 * SEC, seq++) {
    const measurements = []
    for (let s = t; s < t + 10 * SEC && s <= to; s += SEC) {
      for (const [type, val] of Object.entries(values)) measurements.push({ t: s, type, val })
    }
    out.push(toDatagram(pk, id, seq, measurements))
  }
  return out
}

/** Counts the queries sent and the rows they answer. */
class QueryWatch implements KyselyPlugin {
  count = 0
  rows = 0

  transformQuery: KyselyPlugin['transformQuery'] = (args) => args.node

  transformResult: KyselyPlugin['transformResult'] = async (args) => {
    this.count++
    this.rows += args.result.rows.length
    return args.result
  }

  reset(): void {
    this.count = 0
    this.rows = 0
  }
}

/** The devices facade, with a hook run once the energy recomputation has read its marks. */
class HookedDevices extends DevicesService {
  hook?: () => Promise<void>

  override async configsByPk(devicePks: number[]) {
    const configs = await super.configsByPk(devicePks)
    const hook = this.hook
    this.hook = undefined
    await hook?.()
    return configs
  }
}

describe('energy recomputation in batches', () => {
  const dir = tempDir()
  const watch = new QueryWatch()
  let raw: Kysely<Database>
  let db: Kysely<Database>
  let dropSchema: (() => Promise<void>) | undefined
  let devices: HookedDevices
  let telemetry: ReturnType<typeof createTelemetryModule>
  let config: ReturnType<typeof loadConfig>

  before(async () => {
    const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
    dropSchema = schema?.drop
    const opened = await connectDatabase({
      databaseUrl: schema?.url,
      dataDir: dir.path,
      poolMax: 4,
      inMemory: true,
    })
    raw = opened.db
    await migrateToLatest(raw)
    db = raw.withPlugin(watch)
    devices = new HookedDevices(db)
    config = loadConfig({ DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENERGY_INTERVAL: '5m' })
    telemetry = createTelemetryModule({ db, devices, config, log: pino({ level: 'silent' }) })
  })
  after(async () => {
    await raw.destroy()
    await dropSchema?.()
    dir.remove()
  })

  const device = async (cadenceMs?: number) => {
    const id = uniqueName('meter')
    const metadata = cadenceMs ? { config: { sampling_cadence_ms: cadenceMs } } : undefined
    return { id, pk: (await devices.create({ device_id: id, device_name: id, metadata })).id }
  }
  const registers = (pk: number, start: number, stop: number) =>
    telemetry.service.energy.intervals(pk, start, stop)
  const importOf = (rows: { import_wh: number }[]) => rows.reduce((sum, r) => sum + r.import_wh, 0)
  const dirtyCount = async () =>
    Number((await sql<{ n: number }>`select count(*) as n from energy_dirty`.execute(raw)).rows[0]?.n)

  test('marks of several devices in one chunk: exact registers, a handful of queries', async () => {
    const energy = telemetry.service.energy
    // A: 30 min of DC traction, ingested (marking 0…35 min).
    const a = await device()
    await telemetry.service.ingest(datagrams(a.pk, a.id, H0, H0 + 30 * MIN, DC))
    // B: the same with datagram 60 (samples 600…609 s) lost; a 3 s cadence bridges 15 s: the
    // 11 s segment 599 → 610 s is continuous in time and integrated, the recorded seq gap changes
    // nothing (PROTOCOL.md: time, not seq, decides).
    const b = await device(3000)
    const sent = datagrams(b.pk, b.id, H0, H0 + 30 * MIN, DC)
    await telemetry.service.ingest(sent.filter((d) => d.seq !== 60))
    await telemetry.service.recordGaps([
      { devicePk: b.pk, fromSeq: 60, toSeq: 60, fromTs: H0 + 599 * SEC, toTs: H0 + 610 * SEC },
    ])
    // C: 3 h of data stored, but only two intervals marked, two hours apart (each with its next one).
    const c = await device()
    const stored = datagrams(c.pk, c.id, H0, H0 + 3 * 60 * MIN, DC)
    await telemetry.service.store.write(stored)
    await energy.markDatagrams(stored.filter((d) => d.seq === 10 || d.seq === 730))
    // D: AC 25 kV × 100 A × PF 0.95 for 10 min: apparent and reactive registers beside DC nulls.
    const d = await device()
    await telemetry.service.ingest(
      datagrams(d.pk, d.id, H0, H0 + 10 * MIN, { voltage_ac: 25_000, current_ac: 100, pf: 0.95 }),
    )

    const marked = await dirtyCount()
    watch.reset()
    assert.equal(await energy.recompute({ upTo: Date.now() }), marked)
    assert.ok(watch.count <= 6, `${watch.count} queries`)
    assert.equal(await dirtyCount(), 0)

    const full = wh(225_000, I)
    const rowsA = await registers(a.pk, H0, H0 + 35 * MIN)
    assert.deepEqual(
      rowsA.map((r) => [(r.start - H0) / MIN, r.covered_ms]),
      // The last sample (30:00) stands for one cadence (1 s).
      [0, 5, 10, 15, 20, 25, 30].map((m) => [m, m < 30 ? I : SEC]),
    )
    for (const r of rowsA.slice(0, 6)) assertClose(r.import_wh, full, `A ${(r.start - H0) / MIN}`)
    assert.ok(rowsA.every((r) => r.export_wh === 0 && r.apparent_vah === null))

    const rowsB = await registers(b.pk, H0, H0 + 35 * MIN)
    assert.deepEqual(
      rowsB.map((r) => r.covered_ms / SEC),
      [300, 300, 300, 300, 300, 300, 3],
    )
    assertClose(rowsB[1]?.import_wh, wh(225_000, 300 * SEC), 'B before the gap')
    assertClose(rowsB[2]?.import_wh, wh(225_000, 300 * SEC), 'B after the gap')

    const rowsC = await registers(c.pk, H0, H0 + 3 * 60 * MIN)
    assert.deepEqual(
      rowsC.map((r) => [(r.start - H0) / MIN, r.covered_ms]),
      [0, 5, 120, 125].map((m) => [m, I]),
    )
    for (const r of rowsC) assertClose(r.import_wh, full, `C ${(r.start - H0) / MIN}`)

    const rowsD = await registers(d.pk, H0, H0 + 15 * MIN)
    const s = 2_500_000
    const p = 0.95 * s
    assert.deepEqual(
      rowsD.map((r) => r.covered_ms / SEC),
      [300, 300, 1],
    )
    for (const r of rowsD.slice(0, 2)) {
      assertClose(r.import_wh, wh(p, I), 'D import')
      assertClose(r.apparent_vah, wh(s, I), 'D apparent')
      assertClose(r.reactive_varh, wh(Math.sqrt(s * s - p * p), I), 'D reactive')
    }
  })

  test('two dirty intervals hours apart read their own samples, not the span between them', async () => {
    const c = await device()
    const stored = datagrams(c.pk, c.id, H0, H0 + 3 * 60 * MIN, DC)
    await telemetry.service.store.write(stored)
    await telemetry.service.energy.markGap(c.pk, H0 + 20 * MIN, H0 + 20 * MIN)
    await telemetry.service.energy.markGap(c.pk, H0 + 150 * MIN, H0 + 150 * MIN)
    watch.reset()
    assert.equal(await telemetry.service.energy.recompute({ upTo: Date.now() }), 2)
    // Two runs of 5 min + 2 × 5 s: about 620 samples, where the span holds 9,000.
    assert.ok(watch.rows < 1000, `${watch.rows} rows read`)
    const rows = await registers(c.pk, H0, H0 + 3 * 60 * MIN)
    assert.deepEqual(
      rows.map((r) => [(r.start - H0) / MIN, r.covered_ms]),
      [
        [20, I],
        [150, I],
      ],
    )
  })

  test('a register read while a batch is between its rows and its marks waits for the marks', async () => {
    const energy = telemetry.service.energy
    const a = await device()
    const batch = datagrams(a.pk, a.id, H0, H0 + 10 * MIN - SEC, DC)
    let rowsVisible = () => {}
    const visible = new Promise<void>((resolve) => {
      rowsVisible = resolve
    })
    let releaseMarks = () => {}
    const marksMayGo = new Promise<void>((resolve) => {
      releaseMarks = resolve
    })
    // As TelemetryService.ingest does, with the moment between rows and marks held open.
    const storing = energy.whileStoring(async () => {
      await telemetry.service.store.write(batch)
      rowsVisible()
      await marksMayGo
      await energy.markDatagrams(batch)
    })
    await visible
    const reading = registers(a.pk, H0, H0 + 10 * MIN)
    setTimeout(releaseMarks, 100)
    const rows = await reading
    await storing
    assertClose(importOf(rows), wh(225_000, 10 * MIN), 'import of the batch read in its middle')
  })

  test('a mark refreshed between its read and its clearing survives', async () => {
    const energy = telemetry.service.energy
    const e = await device()
    const all = datagrams(e.pk, e.id, H0, H0 + 10 * MIN, DC)
    const late = all.filter((d) => d.seq >= 20 && d.seq < 25) // samples 200…249 s
    await telemetry.service.ingest(all.filter((d) => !late.includes(d)))
    // The late datagrams arrive while the marks of this round are being recomputed (after a tick:
    // PGlite's clock counts whole milliseconds, and the refreshed marked_at must be newer).
    devices.hook = async () => {
      await new Promise((resolve) => setTimeout(resolve, 2))
      await telemetry.service.ingest(late)
    }
    await energy.recompute({ upTo: Date.now() })
    const first = await sql<{ start: Date }>`
      select start from energy_dirty where device_pk = ${e.pk} order by start`.execute(raw)
    assert.deepEqual(
      first.rows.map((r) => (new Date(r.start).getTime() - H0) / MIN),
      [0, 5],
    )
    const rows = await registers(e.pk, H0, H0 + 10 * MIN)
    assert.deepEqual(
      rows.map((r) => r.covered_ms / SEC),
      [300, 300],
    )
    assert.equal(await dirtyCount(), 0)
  })

  test('replicas: samples stored after another replica read the interval still reach its register', async () => {
    // Two replicas of one database: `telemetry` stores the meter's datagrams, `reading` serves the
    // registers. Each read consumes the interval's mark; the next batch must mark it again.
    const reading = createTelemetryModule({ db, devices, config, log: pino({ level: 'silent' }) })
    const r = await device()
    const all = datagrams(r.pk, r.id, H0, H0 + 5 * MIN - SEC, DC)
    const read = async () => importOf(await reading.service.energy.intervals(r.pk, H0, H0 + 5 * MIN))
    // Three batches into the same interval, the register read after each.
    const batches = [all.slice(0, 10), all.slice(10, 20), all.slice(20)]
    let sent = 0
    for (const batch of batches) {
      await telemetry.service.ingest(batch)
      sent += batch.length
      // Each datagram holds 10 one-second samples: 10 s of 225 kW.
      assertClose(await read(), wh(225_000, sent * 10 * SEC), `after ${sent} of ${all.length} datagrams`)
    }
  })

  test('ENERGY_MAX_GAP_S, when set, wins over the cadence of each device', async () => {
    const config = loadConfig({ DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENERGY_MAX_GAP_S: '20' })
    const fixed = createTelemetryModule({ db, devices, config, log: pino({ level: 'silent' }) })
    const f = await device() // a 1 s cadence: 5 s by default
    const sent = datagrams(f.pk, f.id, H0, H0 + 10 * MIN, DC)
    await fixed.service.ingest(sent.filter((d) => d.seq !== 40)) // an 11 s hole, 399 → 410 s
    await fixed.service.energy.recompute({ upTo: Date.now() })
    const rows = await fixed.service.energy.intervals(f.pk, H0, H0 + 10 * MIN)
    assert.deepEqual(
      rows.map((r) => r.covered_ms / SEC),
      [300, 300],
    )
  })

  test('a chunk of 500 marks costs the same few queries for 10 or 100 devices', async () => {
    const counts: number[] = []
    for (const deviceCount of [10, 100]) {
      const pks = []
      for (let i = 0; i < deviceCount; i++) pks.push((await device()).pk)
      const perDevice = 500 / deviceCount
      for (const pk of pks) await telemetry.service.energy.markGap(pk, H0, H0 + (perDevice - 1) * I)
      watch.reset()
      assert.equal(await telemetry.service.energy.recompute({ upTo: Date.now() }), 500)
      counts.push(watch.count)
    }
    // 5 for the chunk (seq gaps no longer read: time alone decides continuity), 1 more read finding nothing left.
    assert.deepEqual(counts, [6, 6])
  })

  test('marking and clearing the same intervals at once never deadlock (PostgreSQL)', {
    skip: realDatabaseUrl ? false : 'PGlite serves one statement at a time: no concurrent transactions',
  }, async () => {
    const pks = []
    for (let i = 0; i < 150; i++) pks.push((await device()).pk)
    const energy = telemetry.service.energy
    let seed = 7
    const shuffle = <T>(items: T[]): T[] => {
      const out = [...items]
      for (let i = out.length - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        const j = seed % (i + 1)
        ;[out[i], out[j]] = [out[j] as T, out[i] as T]
      }
      return out
    }
    for (let round = 0; round < 25; round++) {
      // Every device marks the same 4 intervals each round, in a new order, while the previous
      // round's marks are read, recomputed and cleared. In PostgreSQL each statement locks its rows
      // in its own order: unless both use the same order, two statements that share rows deadlock
      // (and one of them fails, after deadlock_timeout).
      const sent = pks.flatMap((pk) =>
        [0, 1, 2, 3].map((k) =>
          toDatagram(pk, 'm', round, [{ t: H0 + k * I, type: 'voltage_dc', val: 750 }]),
        ),
      )
      await Promise.all([
        energy.recompute({ upTo: Date.now() }),
        energy.markDatagrams(shuffle(sent)),
        energy.markDatagrams(shuffle(sent)),
      ])
    }
    await energy.recompute({ upTo: Date.now() })
  })

  test('in the background, an interval is recomputed once its samples stopped arriving', async () => {
    const config = loadConfig({ DATA_DIR: dir.path, LOG_LEVEL: 'silent', ENERGY_INTERVAL: '5m' })
    const settleMs = 1500
    const quick = createTelemetryModule({
      db: raw,
      devices,
      config,
      log: pino({ level: 'silent' }),
      energySettleMs: settleMs,
    }).service
    const a = await device()
    // Late data: 10 min of samples a day old, in two parts a moment apart, as a buffer empties.
    const late = datagrams(a.pk, a.id, H0, H0 + 10 * MIN, DC)
    await quick.ingest(late.slice(0, 30))
    assert.equal(await quick.energy.recompute(), 0, 'still arriving: left for later')
    await quick.ingest(late.slice(30))
    assert.equal(await quick.energy.recompute(), 0)
    await new Promise((r) => setTimeout(r, settleMs + 200))
    // Intervals 0, 5, 10 min and the one after the last sample's (each mark covers the next one
    // too): each computed once.
    assert.equal(await quick.energy.recompute(), 4)
    assert.equal(await quick.energy.recompute(), 0)
    const [first] = await quick.energy.intervals(a.pk, H0, H0 + 5 * MIN)
    assertClose(first?.import_wh, wh(750 * 300, 5 * MIN), 'first interval')
  })
})
