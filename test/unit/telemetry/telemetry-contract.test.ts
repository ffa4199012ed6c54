import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { setLogger } from '@influxdata/influxdb-client'
import { type Kysely, sql } from 'kysely'
import pino from 'pino'
import { loadConfig } from '../../../src/config.ts'
import { DevicesService } from '../../../src/modules/devices/index.ts'
import { type Datagram, toDatagram } from '../../../src/modules/telemetry/datagram.ts'
import { createTelemetryModule } from '../../../src/modules/telemetry/index.ts'
import { InfluxTelemetryStore } from '../../../src/modules/telemetry/influx-store.ts'
import { DERIVED_TYPES, STORED_TYPES } from '../../../src/modules/telemetry/measurement-types.ts'
import { PostgresTelemetryStore } from '../../../src/modules/telemetry/postgres-store.ts'
import { derivePower } from '../../../src/modules/telemetry/power.ts'
import type { SeqRun, TelemetryStore } from '../../../src/modules/telemetry/store.ts'
import { connectDatabase, type Database, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir, uniqueName } from '../../helpers/env.ts'

// The client logs failed writes to the console; the failures here are deliberate.
setLogger({ error: () => {}, warn: () => {} })

const VICTORIA_METRICS = '/usr/bin/victoria-metrics'
const UNITS: Record<string, string | undefined> = {
  voltage_dc: 'V',
  current_dc: 'A',
  voltage_ac: 'V',
  current_ac: 'A',
  frequency: 'Hz',
  temperature: 'Cel',
  battery: 'V',
  power_active: 'W',
  power_apparent: 'VA',
  power_reactive: 'var',
}

interface StoredPoint {
  metric: string
  time: number
  value: number
  /** Only adapters that keep the unit tag report it. */
  unit?: string
}

/** Three datagrams: a DC meter, an AC meter (one PF negative), irregular samples with an unknown type. */
function datagrams(devicePk: number, deviceId: string, t0: number): Datagram[] {
  const dc = Array.from({ length: 10 }, (_, i) => [
    { t: t0 + i * 1000, type: 'voltage_dc', val: 750 + i },
    { t: t0 + i * 1000, type: 'current_dc', val: 300 - i * 40 }, // negative: regenerating
    { t: t0 + i * 1000, type: 'temperature', val: 41.5 },
  ]).flat()
  const ac = Array.from({ length: 5 }, (_, i) => [
    { t: t0 + 20_000 + i * 2000, type: 'voltage_ac', val: 230.5 },
    { t: t0 + 20_000 + i * 2000, type: 'current_ac', val: 10 + i },
    { t: t0 + 20_000 + i * 2000, type: 'pf', val: i === 4 ? -0.8 : 0.9 },
    { t: t0 + 20_000 + i * 2000, type: 'frequency', val: 50.01 },
  ]).flat()
  const irregular = [
    { t: t0 + 40_000, type: 'battery', val: 54.1 },
    { t: t0 + 40_000, type: 'humidity', val: 61 },
    { t: t0 + 40_700, type: 'battery', val: 54 },
    { t: t0 + 42_500, type: 'humidity', val: 60.5 },
  ]
  return [
    toDatagram(devicePk, deviceId, 1, dc),
    toDatagram(devicePk, deviceId, 2, ac),
    toDatagram(devicePk, deviceId, 3, irregular),
  ]
}

/** What a store must hold for the datagrams: every measured value, and the powers `derivePower` gives. */
function expectedPoints(list: Datagram[]): StoredPoint[] {
  const out: StoredPoint[] = []
  for (const d of list) {
    d.times.forEach((time, i) => {
      const columns = { ...d.values, ...d.other } as Record<string, (number | null)[]>
      for (const [metric, column] of Object.entries(columns)) {
        const value = column[i]
        if (value !== null && value !== undefined) out.push({ metric, time, value, unit: UNITS[metric] })
      }
      const at = (type: keyof typeof d.values) => d.values[type]?.[i] ?? undefined
      const power = derivePower({
        voltage_dc: at('voltage_dc'),
        current_dc: at('current_dc'),
        voltage_ac: at('voltage_ac'),
        current_ac: at('current_ac'),
        pf: at('pf'),
      })
      for (const [metric, value] of Object.entries(power))
        out.push({ metric, time, value, unit: UNITS[metric] })
    })
  }
  return sortPoints(out)
}

const sortPoints = (points: StoredPoint[]) =>
  [...points].sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : a.time - b.time))

function assertSamePoints(actual: StoredPoint[], expected: StoredPoint[], withUnits: boolean) {
  const a = sortPoints(actual)
  assert.equal(a.length, expected.length, `${a.length} points stored, ${expected.length} expected`)
  expected.forEach((e, i) => {
    const got = a[i] as StoredPoint
    assert.equal(got.metric, e.metric)
    assert.equal(got.time, e.time, `${e.metric} time`)
    assert.ok(
      Math.abs(got.value - e.value) <= 1e-9 * Math.max(1, Math.abs(e.value)),
      `${e.metric}: ${got.value}`,
    )
    if (withUnits) assert.equal(got.unit, e.unit, `${e.metric} unit`)
  })
}

/** Points read back, counted per series and time: how often each one is stored. */
function distinct(points: StoredPoint[]): { points: StoredPoint[]; copies: Set<number> } {
  const seen = new Map<string, { point: StoredPoint; n: number }>()
  for (const p of points) {
    const k = `${p.metric}|${p.unit}|${p.time}`
    const entry = seen.get(k)
    if (entry) {
      assert.equal(entry.point.value, p.value, `${k}: a rewrite must carry the same value`)
      entry.n++
    } else seen.set(k, { point: p, n: 1 })
  }
  return {
    points: [...seen.values()].map((e) => e.point),
    copies: new Set([...seen.values()].map((e) => e.n)),
  }
}

interface WriteTarget {
  store: TelemetryStore
  /** A new device; its internal id. */
  device(deviceId: string): Promise<number>
  /** Every point stored for the device, as the backing server has it. */
  read(deviceId: string, devicePk: number, expectedCount: number): Promise<StoredPoint[]>
  withUnits: boolean
  /** store.query answers here (VictoriaMetrics has no Flux: the Flux is tested on the stand-in below). */
  answersQueries: boolean
  /**
   * How many copies a rewrite leaves in the backing server. PostgreSQL: 1 (ON CONFLICT DO NOTHING).
   * VictoriaMetrics keeps both copies of a point where InfluxDB overwrites it, so there the proof of
   * idempotency is that the rewrite hit exactly the same series and timestamps with the same values.
   */
  copiesAfterRewrite: number
  /**
   * store.storedSeqs where the backing server answers it; VictoriaMetrics has no Flux, so there the
   * seq series as written is read back and the run applied here (the Flux is tested on the stand-in).
   */
  seqs(deviceId: string, devicePk: number, run: SeqRun, expectedCount: number): Promise<Set<number>>
  close(): Promise<void>
}

/** The write-path contract of TelemetryStore, the same cases for every adapter. */
function writeContract(name: string, skip: string | false, open: () => Promise<WriteTarget>) {
  describe(`TelemetryStore write contract: ${name}`, { skip }, () => {
    let target: WriteTarget
    const t0 = Date.now() - 3_600_000
    before(async () => {
      target = await open()
    })
    after(async () => {
      await target?.close()
    })

    test('every sample of every type lands with its own time, and so do the derived powers', async () => {
      const id = uniqueName('meter')
      const pk = await target.device(id)
      const list = datagrams(pk, id, t0)
      await target.store.write(list)
      const expected = expectedPoints(list)
      assert.ok(expected.some((p) => p.metric === 'power_reactive'))
      assertSamePoints(await target.read(id, pk, expected.length), expected, target.withUnits)
    })

    test('writing the same datagrams again changes nothing (idempotent)', async () => {
      const id = uniqueName('meter')
      const pk = await target.device(id)
      const list = datagrams(pk, id, t0)
      await target.store.write(list)
      await target.store.write([...list].reverse())
      const expected = expectedPoints(list)
      const stored = distinct(await target.read(id, pk, expected.length * target.copiesAfterRewrite))
      assertSamePoints(stored.points, expected, target.withUnits)
      assert.deepEqual([...stored.copies], [target.copiesAfterRewrite])
    })

    test('one power function: a sample with DC and AC values, and a huge reading, give the same P/S/Q in every store', async () => {
      const id = uniqueName('mixed')
      const pk = await target.device(id)
      const at = t0 + 50_000
      const mixed = toDatagram(pk, id, 9, [
        { t: at, type: 'voltage_dc', val: 750 },
        { t: at, type: 'current_dc', val: 300 },
        { t: at, type: 'voltage_ac', val: 25_000 },
        { t: at, type: 'current_ac', val: 100 },
        { t: at, type: 'pf', val: 0.95 },
        // A finite but absurd reading: stored, never in power (the server test feeds 1e308, which
        // VictoriaMetrics, the stand-in here, does not store faithfully).
        { t: at + 1000, type: 'voltage_dc', val: 1e15 },
        { t: at + 1000, type: 'current_dc', val: -1e15 },
      ])
      await target.store.write([mixed])
      const expected = expectedPoints([mixed])
      const powers = expected.filter((p) => p.metric.startsWith('power_'))
      assert.deepEqual(
        powers.map((p) => [p.metric, p.time, p.value]),
        [['power_active', at, 225_000]],
        'DC wins: P = V × I, and no S or Q from the AC values beside it',
      )
      assertSamePoints(await target.read(id, pk, expected.length), expected, target.withUnits)
      const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
      // The energy read path (VictoriaMetrics has no Flux: the InfluxDB one is tested on the stand-in below).
      if (target.store.name === 'postgres') {
        const samples = await target.store.powerSamples(pk, at - 1000, at + 5000)
        assert.deepEqual(samples.map(defined), [{ t: at, p: 225_000 }])
      }
    })

    test('storedSeqs: the seqs of a run, wrapping past 2^32 − 1, of this device, first sample within an hour before the run', async () => {
      const id = uniqueName('seqs')
      const pk = await target.device(id)
      const otherId = uniqueName('seqs')
      const other = await target.device(otherId)
      const at = t0 - 3_600_000
      const one = (devicePk: number, deviceId: string, seq: number, t: number) =>
        toDatagram(devicePk, deviceId, seq, [{ t, type: 'battery', val: 12 }])
      await target.store.write([
        one(pk, id, 4_294_967_294, at - 20_000), // more than an hour before the run's first envelope
        one(pk, id, 4_294_967_295, at),
        one(pk, id, 0, at + 1000),
        one(pk, id, 2, at + 3_600_000),
        one(pk, id, 3, at + 3_700_000), // after the run's last envelope
        one(other, otherId, 1, at + 2000),
      ])
      const run = { from: 4_294_967_294, to: 3, fromTs: at + 3_590_000, toTs: at + 3_600_000 }
      assert.deepEqual(
        [...(await target.seqs(id, pk, run, 5))].sort((a, b) => a - b),
        [0, 2, 4_294_967_295],
      )
      const plain = { from: 1, to: 2, fromTs: at, toTs: at + 3_600_000 }
      assert.deepEqual([...(await target.seqs(id, pk, plain, 5))], [2])
      assert.deepEqual([...(await target.seqs(otherId, other, plain, 1))], [1])
    })

    test('queryFleet: each device gets the windows query gives it, and a device without data none', async (t) => {
      if (!target.answersQueries) return t.skip('no Flux on this server')
      const ids = [uniqueName('meter'), uniqueName('meter'), uniqueName('meter')]
      const pks = []
      for (const id of ids) pks.push(await target.device(id))
      for (const [n, pk] of pks.slice(0, 2).entries())
        await target.store.write(datagrams(pk, ids[n] as string, t0 + n * 60_000))
      const start = Math.floor(t0 / 900_000) * 900_000
      for (const everyMs of [900_000, 60_000, 7000]) {
        const from = Math.floor(start / everyMs) * everyMs // windows start on multiples of everyMs
        const q = {
          metric: 'voltage_dc',
          start: from,
          stop: from + 1030 * everyMs,
          everyMs,
          fn: 'max' as const,
        }
        const fleet = await target.store.queryFleet({ ...q, devicePks: pks })
        for (const pk of pks) {
          const points = await target.store.query({ ...q, devicePk: pk, limit: 10_000 })
          const row = fleet.values.get(pk) as (number | null)[]
          assert.equal(row.length, Math.ceil((q.stop - q.start) / everyMs))
          assert.deepEqual(
            row.flatMap((value, i) => (value === null ? [] : [{ time: q.start + i * everyMs, value }])),
            points,
          )
        }
        assert.ok(fleet.values.get(pks[0] as number)?.some((v) => v !== null))
        assert.ok(fleet.values.get(pks[2] as number)?.every((v) => v === null))
      }
    })

    test('a large batch lands whole, and an empty one is a no-op', async () => {
      const id = uniqueName('meter')
      const pk = await target.device(id)
      await target.store.write([])
      const list = Array.from({ length: 200 }, (_, n) =>
        toDatagram(
          pk,
          id,
          n,
          Array.from({ length: 10 }, (_, i) => [
            { t: t0 + n * 10_000 + i * 1000, type: 'voltage_dc', val: 700 + (i % 7) },
            { t: t0 + n * 10_000 + i * 1000, type: 'current_dc', val: 100 + n },
            { t: t0 + n * 10_000 + i * 1000, type: 'temperature', val: 30 },
          ]).flat(),
        ),
      )
      await target.store.write(list)
      const expected = expectedPoints(list)
      assert.equal(expected.length, 8000)
      assertSamePoints(await target.read(id, pk, expected.length), expected, target.withUnits)
    })
  })
}

async function openPostgres(): Promise<WriteTarget & { db: Kysely<Database> }> {
  const dir = tempDir()
  const schema = realDatabaseUrl ? await createSchema(realDatabaseUrl) : undefined
  const { db } = await connectDatabase({
    databaseUrl: schema?.url,
    dataDir: dir.path,
    poolMax: 4,
    inMemory: true,
  })
  await migrateToLatest(db)
  const store = new PostgresTelemetryStore(db)
  return {
    db,
    store,
    withUnits: false,
    answersQueries: true,
    copiesAfterRewrite: 1,
    device: (deviceId) => insertDevice(db, deviceId),
    seqs: (_deviceId, devicePk, run) => store.storedSeqs(devicePk, run),
    async read(_deviceId, devicePk) {
      const out: StoredPoint[] = []
      const metrics = [...STORED_TYPES, ...DERIVED_TYPES, 'humidity']
      for (const metric of metrics) {
        const points = await store.query({
          devicePk,
          metric,
          start: 0,
          stop: Date.now(),
          fn: 'mean',
          limit: 1e6,
        })
        for (const p of points) out.push({ metric, time: p.time, value: p.value })
      }
      return out
    },
    async close() {
      await db.destroy()
      await schema?.drop()
      dir.remove()
    },
  }
}

async function insertDevice(db: Kysely<Database>, deviceId: string): Promise<number> {
  const { rows } = await sql<{ id: number }>`
    insert into devices (device_id, device_name) values (${deviceId}, ${deviceId}) returning id`.execute(db)
  return Number(rows[0]?.id)
}

/** VictoriaMetrics on a free port of 127.0.0.1: a real server of the InfluxDB v2 write API. */
async function startVictoriaMetrics(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = tempDir('victoria-')
  const port = await freePort()
  const child: ChildProcess = spawn(
    VICTORIA_METRICS,
    [`-httpListenAddr=127.0.0.1:${port}`, `-storageDataPath=${dir.path}`, '-loggerLevel=ERROR'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  const url = `http://127.0.0.1:${port}`
  const exited = once(child, 'exit')
  const deadline = Date.now() + 15_000
  for (;;) {
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('victoria-metrics did not start')
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
      dir.remove()
    },
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** The seq series of one device (measurement iot_seq), as time and seq, polled until `count` are searchable. */
async function exportSeqs(url: string, deviceId: string, count: number): Promise<StoredPoint[]> {
  return exportPoints(url, deviceId, count, 'iot_seq_seq')
}

/** `/api/v1/export` of one device's series, polled until `count` points are searchable (~1 s after a write). */
async function exportPoints(
  url: string,
  deviceId: string,
  count: number,
  name = 'iot_telemetry_value',
): Promise<StoredPoint[]> {
  const deadline = Date.now() + 20_000
  for (;;) {
    await fetch(`${url}/internal/force_flush`).catch(() => undefined)
    const query = new URLSearchParams({ 'match[]': `{__name__="${name}",device_id="${deviceId}"}` })
    const text = await (await fetch(`${url}/api/v1/export?${query}`)).text()
    const points: StoredPoint[] = []
    for (const line of text.split('\n').filter(Boolean)) {
      const series = JSON.parse(line) as {
        metric: Record<string, string>
        values: number[]
        timestamps: number[]
      }
      assert.equal(series.metric.__name__, name)
      assert.equal(series.metric.device_id, deviceId)
      const { metric = 'seq', unit } = series.metric
      if (name === 'iot_telemetry_value')
        assert.ok(series.metric.metric, 'every series carries the metric tag')
      series.values.forEach((value, i) => {
        points.push({ metric, unit, time: series.timestamps[i] as number, value })
      })
    }
    if (points.length >= count || Date.now() > deadline) return points
    await new Promise((r) => setTimeout(r, 250))
  }
}

writeContract('PostgreSQL/PGlite', false, openPostgres)

writeContract(
  'InfluxDB adapter → VictoriaMetrics (InfluxDB v2 write API)',
  existsSync(VICTORIA_METRICS)
    ? false
    : `${VICTORIA_METRICS} is absent (apt-get install -y victoria-metrics)`,
  async () => {
    const vm = await startVictoriaMetrics()
    const store = new InfluxTelemetryStore({
      url: vm.url,
      token: 'unused-by-victoria-metrics',
      org: 'iot',
      bucket: 'telemetry',
      deviceIdOf: async () => undefined,
    })
    let nextPk = 1
    return {
      store,
      withUnits: true,
      answersQueries: false,
      copiesAfterRewrite: 2,
      device: async () => nextPk++,
      read: (deviceId, _pk, count) => exportPoints(vm.url, deviceId, count),
      async seqs(deviceId, _pk, run, count) {
        const inRun = (s: number) =>
          run.from <= run.to ? s >= run.from && s <= run.to : s >= run.from || s <= run.to
        const points = await exportSeqs(vm.url, deviceId, count)
        const inTime = points.filter((p) => p.time >= run.fromTs - 3_600_000 && p.time <= run.toTs)
        return new Set(inTime.map((p) => p.value).filter(inRun))
      },
      async close() {
        await store.close()
        await vm.stop()
      },
    }
  },
)

interface Recorded {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}
type Handler = (request: Recorded, response: ServerResponse) => unknown

/** A stand-in InfluxDB on port 0: records each request (gunzipped) and answers with the current handler. */
async function fakeInflux() {
  const requests: Recorded[] = []
  let handler: Handler = (_req, res) => res.writeHead(204).end()
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks)
    const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw
    const recorded = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: body.toString(),
    }
    requests.push(recorded)
    await handler(recorded, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    answer(next: Handler) {
      handler = next
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

const csv = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`
const answerCsv =
  (body: string): Handler =>
  (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' }).end(body)

describe('InfluxDB adapter: write requests (stand-in server)', () => {
  let influx: Awaited<ReturnType<typeof fakeInflux>>
  let store: InfluxTelemetryStore
  const t0 = Date.UTC(2026, 10, 20, 8)
  before(async () => {
    influx = await fakeInflux()
    store = new InfluxTelemetryStore({
      url: influx.url,
      token: 'secret-token',
      org: 'acme',
      bucket: 'telemetry',
      deviceIdOf: async () => undefined,
    })
  })
  after(async () => {
    await store.close()
    await influx.close()
  })

  test('line protocol with tags, ms timestamps and the token; resolves only after the answer', async () => {
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    influx.answer(async (_req, res) => {
      await held
      res.writeHead(204).end()
    })
    influx.requests.length = 0
    let settled = false
    const writing = store.write(datagrams(7, 'meter-1', t0)).then(() => {
      settled = true
    })
    await new Promise((r) => setTimeout(r, 150))
    assert.equal(influx.requests.length, 1)
    assert.equal(settled, false, 'write() must wait for the server')
    release()
    await writing
    const [request] = influx.requests as [Recorded]
    assert.equal(request.method, 'POST')
    assert.equal(request.url, '/api/v2/write?org=acme&bucket=telemetry&precision=ms')
    assert.equal(request.headers.authorization, 'Token secret-token')
    const lines = request.body.split('\n')
    // Every point, and one seq line per datagram (storedSeqs reads them).
    assert.equal(lines.length, expectedPoints(datagrams(7, 'meter-1', t0)).length + 3)
    assert.ok(lines.includes(`iot_seq,device_id=meter-1 seq=2i ${t0 + 20_000}`))
    assert.ok(lines.includes(`iot_telemetry,device_id=meter-1,metric=voltage_dc,unit=V value=750 ${t0}`))
    assert.ok(lines.includes(`iot_telemetry,device_id=meter-1,metric=power_active,unit=W value=225000 ${t0}`))
    assert.ok(lines.includes(`iot_telemetry,device_id=meter-1,metric=pf value=0.9 ${t0 + 20_000}`))
    assert.ok(lines.includes(`iot_telemetry,device_id=meter-1,metric=humidity value=60.5 ${t0 + 42_500}`))
  })

  test('a PF outside −1…1 gives apparent power only, as derivePower says', async () => {
    influx.answer((_req, res) => res.writeHead(204).end())
    influx.requests.length = 0
    const sample = [
      { t: t0, type: 'voltage_ac', val: 230 },
      { t: t0, type: 'current_ac', val: 10 },
      { t: t0, type: 'pf', val: 1.5 },
    ]
    await store.write([toDatagram(7, 'meter-1', 1, sample)])
    const lines = (influx.requests[0] as Recorded).body.split('\n')
    assert.deepEqual(
      lines.filter((l) => l.includes('metric=power')),
      [`iot_telemetry,device_id=meter-1,metric=power_apparent,unit=VA value=2300 ${t0}`],
    )
  })

  test('a refused write rejects, and its points are not resent behind the caller’s back', async () => {
    influx.answer((_req, res) =>
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end('{"code":"internal error","message":"boom"}'),
    )
    await assert.rejects(store.write(datagrams(7, 'meter-1', t0)), /boom/)
    influx.answer((_req, res) => res.writeHead(204).end())
    influx.requests.length = 0
    const single = toDatagram(7, 'meter-1', 9, [{ t: t0, type: 'battery', val: 12 }])
    await store.write([single])
    assert.deepEqual(
      influx.requests.map((r) => r.body),
      [
        `iot_telemetry,device_id=meter-1,metric=battery,unit=V value=12 ${t0}\niot_seq,device_id=meter-1 seq=9i ${t0}`,
      ],
    )
  })

  test('a large write goes out in requests of at most 5,000 lines, all awaited', async () => {
    let answered = 0
    influx.answer(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 30))
      answered++
      res.writeHead(204).end()
    })
    influx.requests.length = 0
    const list = Array.from({ length: 300 }, (_, n) =>
      toDatagram(
        7,
        'meter-1',
        n,
        Array.from({ length: 10 }, (_, i) => [
          { t: t0 + n * 10_000 + i * 1000, type: 'voltage_dc', val: 700 },
          { t: t0 + n * 10_000 + i * 1000, type: 'current_dc', val: 10 },
          { t: t0 + n * 10_000 + i * 1000, type: 'temperature', val: 30 },
        ]).flat(),
      ),
    )
    await store.write(list)
    assert.equal(answered, 3)
    assert.deepEqual(
      influx.requests.map((r) => r.body.split('\n').length),
      [5000, 5000, 2300], // 12,000 points and 300 seq lines
    )
  })
})

describe('InfluxDB adapter: Flux queries and annotated-CSV answers (stand-in server)', () => {
  let influx: Awaited<ReturnType<typeof fakeInflux>>
  let deviceId = 'meter-1'
  let store: InfluxTelemetryStore
  const start = Date.UTC(2026, 10, 20, 8, 0, 30)
  const stop = Date.UTC(2026, 10, 20, 9)
  const sentQuery = () => {
    const last = influx.requests.at(-1) as Recorded
    assert.equal(last.method, 'POST')
    assert.equal(last.url, '/api/v2/query?org=acme')
    return (JSON.parse(last.body) as { query: string }).query
  }
  before(async () => {
    influx = await fakeInflux()
    store = new InfluxTelemetryStore({
      url: influx.url,
      token: 'secret-token',
      org: 'acme',
      bucket: 'telemetry',
      deviceIdOf: async (pk) => (pk === 404 ? undefined : deviceId),
    })
  })
  after(async () => {
    await store.close()
    await influx.close()
  })

  test('raw points: the Flux sent, and every row of a two-table answer parsed', async () => {
    influx.answer(
      answerCsv(
        csv([
          '#datatype,string,long,dateTime:RFC3339,double',
          '#group,false,false,false,false',
          '#default,_result,,,',
          ',result,table,_time,_value',
          ',,0,2026-11-20T08:00:30Z,750',
          ',,0,2026-11-20T08:00:31.5Z,751.25',
          '',
          '#datatype,string,long,dateTime:RFC3339,double',
          '#group,false,false,false,false',
          '#default,_result,,,',
          ',result,table,_time,_value',
          ',,1,2026-11-20T08:00:32.123456789Z,-3.5e2',
        ]),
      ),
    )
    const points = await store.query({
      devicePk: 7,
      metric: 'voltage_dc',
      start,
      stop,
      fn: 'mean',
      limit: 100,
    })
    assert.equal(
      sentQuery(),
      `from(bucket: "telemetry")
  |> range(start: time(v: "2026-11-20T08:00:30.000Z"), stop: time(v: "2026-11-20T09:00:00.000Z"))
  |> filter(fn: (r) => r._measurement == "iot_telemetry" and r._field == "value")
  |> filter(fn: (r) => r.device_id == "meter-1")
  |> filter(fn: (r) => r.metric == "voltage_dc")
  |> group()
  |> sort(columns: ["_time"])
  |> limit(n: 100)
  |> keep(columns: ["_time", "_value"])`,
    )
    assert.deepEqual(points, [
      { time: Date.UTC(2026, 10, 20, 8, 0, 30), value: 750 },
      { time: Date.UTC(2026, 10, 20, 8, 0, 31, 500), value: 751.25 },
      { time: Date.UTC(2026, 10, 20, 8, 0, 32, 123), value: -350 },
    ])
  })

  test('windows: aggregateWindow with the mapped fn; window starts epoch-aligned; long counts', async () => {
    influx.answer(
      answerCsv(
        csv([
          '#datatype,string,long,dateTime:RFC3339,long',
          '#group,false,false,false,false',
          '#default,_result,,,',
          ',result,table,_time,_value',
          ',,0,2026-11-20T08:00:30Z,30',
          ',,0,2026-11-20T08:01:00Z,60',
          ',,0,2026-11-20T08:02:00Z,',
        ]),
      ),
    )
    const points = await store.query({
      devicePk: 7,
      metric: 'pf',
      start,
      stop,
      everyMs: 60_000,
      fn: 'count',
      limit: 10,
    })
    assert.match(
      sentQuery(),
      /\|> filter\(fn: \(r\) => r.metric == "pf"\)\n {2}\|> aggregateWindow\(every: duration\(v: "60000ms"\), fn: count, createEmpty: false, timeSrc: "_start"\)\n {2}\|> group\(\)/,
    )
    assert.deepEqual(points, [
      { time: Date.UTC(2026, 10, 20, 8, 0), value: 30 },
      { time: Date.UTC(2026, 10, 20, 8, 1), value: 60 },
    ])
    for (const fn of ['mean', 'min', 'max', 'last', 'sum'] as const) {
      await store.query({ devicePk: 7, metric: 'pf', start, stop, everyMs: 900_000, fn, limit: 10 })
      assert.ok(
        sentQuery().includes(`aggregateWindow(every: duration(v: "900000ms"), fn: ${fn}, createEmpty: false`),
      )
    }
    await assert.rejects(
      store.query({
        devicePk: 7,
        metric: 'pf',
        start,
        stop,
        everyMs: 1000,
        fn: 'median' as 'mean',
        limit: 1,
      }),
      /unknown aggregate function/,
    )
  })

  test('hostile device ids and metrics travel as escaped string literals, never as Flux', async () => {
    influx.answer(answerCsv(''))
    const skeleton = (flux: string) => flux.replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    const literals = (flux: string) =>
      [...flux.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) =>
        (m[1] as string).replace(/\\(\$\{|["\\nrt])/g, (_, c: string) =>
          c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c,
        ),
      )
    deviceId = 'meter-1'
    await store.query({ devicePk: 7, metric: 'voltage_dc', start, stop, fn: 'mean', limit: 5 })
    const benign = sentQuery()
    const hostile = [
      ['x") |> drop(columns: ["_value"]) //', '"; import "http"'],
      ['a\\" or true or "', 'v\n|> yield()'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Flux interpolation is the hostile input here
      ['${r._value}', '\\'],
    ] as const
    for (const [n, [id, metric]] of hostile.entries()) {
      deviceId = id
      // A device of its own: the store remembers the device id of an internal id.
      await store.query({ devicePk: 100 + n, metric, start, stop, fn: 'mean', limit: 5 })
      const sent = sentQuery()
      assert.equal(skeleton(sent), skeleton(benign), `structure changed by ${JSON.stringify([id, metric])}`)
      assert.ok(literals(sent).includes(id), `device id literal of ${JSON.stringify(id)}`)
      assert.ok(literals(sent).includes(metric), `metric literal of ${JSON.stringify(metric)}`)
    }
    deviceId = 'meter-1'
  })

  test('power samples: one pivoted row per time; rows without active power are skipped', async () => {
    influx.answer(
      answerCsv(
        csv([
          '#datatype,string,long,dateTime:RFC3339,double,double,double,double',
          '#group,false,false,false,false,false,false,false',
          '#default,_result,,,,,,',
          ',result,table,_time,power_active,power_apparent,power_reactive,reactive_sign',
          ',,0,2026-11-20T08:00:30Z,225000,,,',
          ',,0,2026-11-20T08:00:31Z,2074.5,2305,1004.7243,',
          ',,0,2026-11-20T08:00:32Z,,2305,,',
          ',,0,2026-11-20T08:00:33Z,2074.5,2305,-1004.7243,-1',
        ]),
      ),
    )
    const samples = await store.powerSamples(7, start, stop)
    assert.equal(
      sentQuery(),
      `from(bucket: "telemetry")
  |> range(start: time(v: "2026-11-20T08:00:30.000Z"), stop: time(v: "2026-11-20T09:00:00.000Z"))
  |> filter(fn: (r) => r._measurement == "iot_telemetry" and r._field == "value")
  |> filter(fn: (r) => r.device_id == "meter-1")
  |> filter(fn: (r) => r.metric == "power_active" or r.metric == "power_apparent" or r.metric == "power_reactive" or r.metric == "reactive_sign")
  |> keep(columns: ["_time", "_value", "metric"])
  |> group()
  |> pivot(rowKey: ["_time"], columnKey: ["metric"], valueColumn: "_value")
  |> sort(columns: ["_time"])`,
    )
    assert.deepEqual(samples, [
      { t: Date.UTC(2026, 10, 20, 8, 0, 30), p: 225000 },
      { t: Date.UTC(2026, 10, 20, 8, 0, 31), p: 2074.5, s: 2305, q: 1004.7243, signed: false },
      // The sign of Q stated by the meter (its reactive_sign series): a signed sample.
      { t: Date.UTC(2026, 10, 20, 8, 0, 33), p: 2074.5, s: 2305, q: -1004.7243, signed: true },
    ])
    // A DC-only device: the answer has no apparent or reactive column at all.
    influx.answer(
      answerCsv(
        csv([
          '#datatype,string,long,dateTime:RFC3339,double',
          '#group,false,false,false,false',
          '#default,_result,,,',
          ',result,table,_time,power_active',
          ',,0,2026-11-20T08:00:30Z,-1200.5',
        ]),
      ),
    )
    assert.deepEqual(await store.powerSamples(7, start, stop), [
      { t: Date.UTC(2026, 10, 20, 8, 0, 30), p: -1200.5 },
    ])
  })

  test('storedSeqs: the Flux of a run (plain and wrapping) on the seq series, and the seqs answered', async () => {
    influx.answer(
      answerCsv(
        csv([
          '#datatype,string,long,long',
          '#group,false,false,false',
          '#default,_result,,',
          ',result,table,_value',
          ',,0,4294967295',
          ',,0,0',
          ',,0,2',
        ]),
      ),
    )
    const run = { from: 4_294_967_294, to: 3, fromTs: start, toTs: stop }
    assert.deepEqual([...(await store.storedSeqs(7, run))], [4_294_967_295, 0, 2])
    assert.equal(
      sentQuery(),
      `from(bucket: "telemetry")
  |> range(start: time(v: "2026-11-20T07:00:30.000Z"), stop: time(v: "2026-11-20T09:00:00.001Z"))
  |> filter(fn: (r) => r._measurement == "iot_seq" and r._field == "seq")
  |> filter(fn: (r) => r.device_id == "meter-1")
  |> filter(fn: (r) => r._value >= 4294967294 or r._value <= 3)
  |> group()
  |> keep(columns: ["_value"])`,
    )
    influx.answer(answerCsv(''))
    assert.deepEqual([...(await store.storedSeqs(7, { ...run, from: 5, to: 9 }))], [])
    assert.match(sentQuery(), /\|> filter\(fn: \(r\) => r._value >= 5 and r._value <= 9\)/)
    influx.requests.length = 0
    assert.deepEqual([...(await store.storedSeqs(404, run))], [])
    assert.equal(influx.requests.length, 0, 'an unknown device asks nothing')
  })

  test('an unknown device asks nothing; a Flux error rejects with the server’s message, not its status', async () => {
    influx.requests.length = 0
    assert.deepEqual(
      await store.query({ devicePk: 404, metric: 'pf', start, stop, fn: 'mean', limit: 5 }),
      [],
    )
    assert.deepEqual(await store.powerSamples(404, start, stop), [])
    assert.equal(influx.requests.length, 0)
    influx.answer((_req, res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"code":"invalid","message":"compilation failed: error @1:1-1:4: undefined identifier frm"}'),
    )
    // InfluxDB's 400 is this server's fault, not the API caller's: no HTTP status may reach the edge.
    await assert.rejects(
      store.query({ devicePk: 7, metric: 'pf', start, stop, fn: 'mean', limit: 5 }),
      (error: Error & { statusCode?: number }) =>
        /compilation failed/.test(error.message) && error.statusCode === undefined,
    )
  })

  test('ping: /health passes, and a failing or unreachable server rejects', async () => {
    influx.answer((req, res) => {
      assert.equal(req.url, '/health')
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"name":"influxdb","status":"pass"}')
    })
    await store.ping()
    influx.answer((_req, res) =>
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"name":"influxdb","status":"fail"}'),
    )
    await assert.rejects(store.ping())
    const gone = new InfluxTelemetryStore({
      url: 'http://127.0.0.1:9',
      token: 't',
      org: 'o',
      bucket: 'b',
      deviceIdOf: async () => undefined,
    })
    await assert.rejects(gone.ping())
    await gone.close()
  })
})

describe('telemetry module: store selection', () => {
  let pg: Awaited<ReturnType<typeof openPostgres>>
  const dir = tempDir()
  const base = { DATA_DIR: dir.path, LOG_LEVEL: 'silent' }
  const moduleWith = (env: Record<string, string>) => {
    const config = loadConfig({ ...base, ...env })
    return createTelemetryModule({
      db: pg.db,
      devices: new DevicesService(pg.db),
      config,
      log: pino({ level: 'silent' }),
    })
  }
  before(async () => {
    pg = await openPostgres()
  })
  after(async () => {
    await pg.close()
    dir.remove()
  })

  test('INFLUX_URL selects InfluxDB; unset keeps PostgreSQL', () => {
    assert.equal(moduleWith({}).service.store.name, 'postgres')
    const influx = moduleWith({
      INFLUX_URL: 'http://127.0.0.1:8086',
      INFLUX_TOKEN: 't',
      INFLUX_ORG: 'o',
      INFLUX_BUCKET: 'b',
    })
    assert.equal(influx.service.store.name, 'influxdb')
  })

  test('INFLUX_URL without its companions fails at start, naming each missing one', () => {
    assert.throws(
      () => moduleWith({ INFLUX_URL: 'http://127.0.0.1:8086', INFLUX_ORG: 'o' }),
      (error: Error) =>
        /INFLUX_TOKEN: required when INFLUX_URL is set/.test(error.message) &&
        /INFLUX_BUCKET: required when INFLUX_URL is set/.test(error.message) &&
        !/INFLUX_ORG/.test(error.message),
    )
  })
})
