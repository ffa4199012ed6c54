import {
  type FluxTableMetaData,
  InfluxDB,
  type Point,
  type QueryApi,
  type WriteApi,
} from '@influxdata/influxdb-client'
import type { Datagram } from './datagram.ts'
import { powerFlux, seqFlux, seriesFlux } from './influx-flux.ts'
import { datagramPoints, REACTIVE_SIGN } from './influx-points.ts'
import { powerSampleOf } from './power.ts'
import { SEQ_SPAN_MS } from './seq-lookups.ts'
import type {
  FleetQuery,
  FleetSeries,
  PowerRange,
  PowerSample,
  SeqAsk,
  SeqRun,
  SeriesPoint,
  SeriesQuery,
  TelemetryStore,
} from './store.ts'
import { queryEachDevice } from './store.ts'

export interface InfluxStoreOptions {
  url: string
  token: string
  org: string
  bucket: string
  /** The device_id tag of an internal device id (queries name devices by id, series by device_id). */
  deviceIdOf: (devicePk: number) => Promise<string | undefined>
  /** HTTP timeout of each write and query (default 10 s). */
  timeoutMs?: number
}

/** Lines per write request (~0.5 MB), far below InfluxDB's request size limit. */
const LINES_PER_REQUEST = 5000
/** Remembered device ids; ids never change for an internal id, so the map is only ever cleared to bound it. */
const MAX_REMEMBERED_DEVICES = 100_000

/**
 * A failed InfluxDB request. It carries InfluxDB's message for the log but not its HTTP status: a 400
 * or 401 from InfluxDB is this server's fault, not the API caller's, and must reach the edge as a 500.
 */
export class InfluxRequestError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`InfluxDB ${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    })
    this.name = 'InfluxRequestError'
  }
}

async function request<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    throw new InfluxRequestError(operation, error)
  }
}

const number = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined
const timeOf = (values: string[], meta: FluxTableMetaData) => Date.parse(String(meta.get(values, '_time')))

/**
 * The time-series store on InfluxDB 2: line-protocol writes of measurement `iot_telemetry` (tags
 * device_id, metric, unit; field value; the sample's own time in ms) including the derived powers,
 * and Flux queries. A write resolves only once InfluxDB has answered every request of it, so the
 * ingest settles its journal on durable data; a rewrite overwrites the same points (idempotent).
 */
export class InfluxTelemetryStore implements TelemetryStore {
  readonly name = 'influxdb'
  private readonly influx: InfluxDB
  private readonly writeApi: WriteApi
  private readonly queryApi: QueryApi
  private readonly deviceIds = new Map<number, string>()

  constructor(private readonly o: InfluxStoreOptions) {
    this.influx = new InfluxDB({ url: o.url, token: o.token, timeout: o.timeoutMs ?? 10_000 })
    this.writeApi = this.influx.getWriteApi(o.org, o.bucket, 'ms', {
      // write() sends and awaits its own requests: no timer flush, no size-triggered flush whose outcome
      // nobody awaits (a request never exceeds batchSize), and no background retries — a failed write
      // rejects and the ingest, whose journal still holds the messages, writes them again.
      batchSize: LINES_PER_REQUEST + 1,
      flushInterval: 0,
      maxRetries: 0,
    })
    this.queryApi = this.influx.getQueryApi(o.org)
  }

  async write(datagrams: Datagram[]): Promise<void> {
    const points: Point[] = []
    for (const d of datagrams) {
      this.remember(d.devicePk, d.deviceId)
      for (const p of datagramPoints(d)) points.push(p)
    }
    for (let i = 0; i < points.length; i += LINES_PER_REQUEST) {
      // writePoints buffers synchronously and flush() takes the whole buffer before its first await, so
      // concurrent writes never share a request, and each flush settles with the answer to its request.
      this.writeApi.writePoints(points.slice(i, i + LINES_PER_REQUEST))
      await request('write', () => this.writeApi.flush())
    }
  }

  /** One Flux query per device: InfluxDB aggregates each window itself, there are no rollups here. */
  queryFleet(q: FleetQuery): Promise<FleetSeries> {
    return queryEachDevice(this, q)
  }

  async query(q: SeriesQuery): Promise<SeriesPoint[]> {
    const deviceId = await this.deviceId(q.devicePk)
    if (deviceId === undefined) return []
    const every = q.everyMs
    const flux = seriesFlux(this.o.bucket, deviceId, q)
    return request('query', () =>
      this.queryApi.collectRows(flux, (values, meta) => {
        const value = number(meta.get(values, '_value'))
        const time = timeOf(values, meta)
        if (value === undefined || !Number.isFinite(time)) return undefined
        // A window clipped by the range start is stamped with that start: report the epoch-aligned one.
        return { time: every ? Math.floor(time / every) * every : time, value }
      }),
    )
  }

  async powerSamples(devicePk: number, start: number, stop: number): Promise<PowerSample[]> {
    const deviceId = await this.deviceId(devicePk)
    if (deviceId === undefined) return []
    const flux = powerFlux(this.o.bucket, deviceId, start, stop)
    return request('query', () =>
      this.queryApi.collectRows(flux, (values, meta) => {
        const t = timeOf(values, meta)
        if (!Number.isFinite(t)) return undefined
        // The powers derivePower gave at write time (influx-points.ts), as the PostgreSQL store derives them on read.
        const power = {
          power_active: number(meta.get(values, 'power_active')),
          power_apparent: number(meta.get(values, 'power_apparent')),
          power_reactive: number(meta.get(values, 'power_reactive')),
        }
        return powerSampleOf(t, power, number(meta.get(values, REACTIVE_SIGN)) !== undefined)
      }),
    )
  }

  /** One Flux query per range, one after the other: Flux has no cheap join of many device ranges. */
  async powerSamplesMany(ranges: PowerRange[]): Promise<PowerSample[][]> {
    const out: PowerSample[][] = []
    for (const r of ranges) out.push(await this.powerSamples(r.devicePk, r.start, r.stop))
    return out
  }

  /** The seqs of the run in the device's seq series (written with each datagram, influx-points.ts). */
  /** One Flux query per run (InfluxDB answers each from the device's seq series). */
  async storedSeqsMany(asks: readonly SeqAsk[]): Promise<Set<number>[]> {
    const out: Set<number>[] = []
    for (const { devicePk, run } of asks) out.push(await this.storedSeqs(devicePk, run))
    return out
  }

  async storedSeqs(devicePk: number, run: SeqRun): Promise<Set<number>> {
    const deviceId = await this.deviceId(devicePk)
    if (deviceId === undefined) return new Set()
    const flux = seqFlux(this.o.bucket, deviceId, run, run.fromTs - SEQ_SPAN_MS)
    const seqs = await request('query', () =>
      this.queryApi.collectRows(flux, (values, meta) => number(Number(meta.get(values, '_value')))),
    )
    return new Set(seqs)
  }

  /** Readiness: InfluxDB's /health (rejects on a failing or unreachable server). */
  async ping(): Promise<void> {
    const health = await request('health check', () =>
      this.influx.transport.request('/health', null, { method: 'GET' }),
    )
    if (health && typeof health === 'object' && (health as { status?: string }).status === 'fail') {
      throw new Error(`InfluxDB health: ${(health as { message?: string }).message ?? 'fail'}`)
    }
  }

  /** Flushes what is buffered (nothing, normally: each write flushes its own points). */
  async close(): Promise<void> {
    await this.writeApi.close()
  }

  private remember(devicePk: number, deviceId: string): void {
    if (this.deviceIds.get(devicePk) === deviceId) return
    if (this.deviceIds.size >= MAX_REMEMBERED_DEVICES) this.deviceIds.clear()
    this.deviceIds.set(devicePk, deviceId)
  }

  private async deviceId(devicePk: number): Promise<string | undefined> {
    const known = this.deviceIds.get(devicePk)
    if (known !== undefined) return known
    const found = await this.o.deviceIdOf(devicePk)
    if (found !== undefined) this.remember(devicePk, found)
    return found
  }
}
