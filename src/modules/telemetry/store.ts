import type { Datagram } from './datagram.ts'
import type { PowerSample } from './energy-integrator.ts'
import type { DerivedType, StoredType } from './measurement-types.ts'

export type { PowerSample }

export type AggregateFn = 'mean' | 'min' | 'max' | 'last' | 'sum' | 'count'

export interface SeriesQuery {
  devicePk: number
  metric: StoredType | DerivedType | string
  start: number
  stop: number
  /** Window length in ms for aggregated answers; absent = raw points. */
  everyMs?: number
  fn: AggregateFn
  limit: number
}

/** The same windows of many devices (GET /api/fleet/metrics); start and stop are multiples of everyMs. */
export interface FleetQuery {
  devicePks: readonly number[]
  metric: StoredType | DerivedType | string
  start: number
  stop: number
  everyMs: number
  fn: AggregateFn
}

/**
 * Each device's windows (every device asked, none left out) as one value per window of
 * [start, stop) in order (null: no sample in it), and hours not in the rollups yet.
 */
export interface FleetSeries {
  values: Map<number, (number | null)[]>
  /** Device-hours whose newest samples the answer does not hold yet (rollups being refreshed); 0 = exact. */
  pendingHours: number
}

/** A device's time range [start, stop) of power samples to read. */
export interface PowerRange {
  devicePk: number
  start: number
  stop: number
}

export interface SeriesPoint {
  time: number
  value: number
}

/** A device's run of seqs to look up (TelemetryStore.storedSeqsMany). */
export interface SeqAsk {
  devicePk: number
  run: SeqRun
}

/** A run of seqs (wrapping past 2^32 − 1 when `from` > `to`) sent between two envelope times. */
export interface SeqRun {
  from: number
  to: number
  fromTs: number
  toTs: number
}

/**
 * Where time series live. Writes are idempotent: storing the same datagram again (a redelivery, a
 * replayed journal) changes nothing. Adapters: PostgreSQL/PGlite (postgres-store.ts) and InfluxDB
 * (influx-store.ts); test/process/telemetry-contract.test.ts runs the same cases on both.
 */
export interface TelemetryStore {
  readonly name: string
  write(datagrams: Datagram[]): Promise<void>
  query(q: SeriesQuery): Promise<SeriesPoint[]>
  /** The same windows of many devices. */
  queryFleet(q: FleetQuery): Promise<FleetSeries>
  /** Power samples of one device in [start, stop), sorted by time. */
  powerSamples(devicePk: number, start: number, stop: number): Promise<PowerSample[]>
  /** Power samples of many ranges at once: one array per range, in the order given, each sorted by time. */
  powerSamplesMany(ranges: PowerRange[]): Promise<PowerSample[][]>
  /**
   * The seqs of a run that this store holds for the device, whoever wrote them (any replica): the
   * ingest takes them out of a hole before declaring it a gap (gap-claims.ts). A datagram counts
   * when its first sample lies within an hour before the run's envelope times, up to the last.
   */
  storedSeqs(devicePk: number, run: SeqRun): Promise<Set<number>>
  /** storedSeqs of many runs in one lookup where the store can: one set per ask, in the order given. */
  storedSeqsMany(asks: readonly SeqAsk[]): Promise<Set<number>[]>
  /** Readiness: throws when the store does not answer. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** A fleet query as one query per device: for stores, metrics or windows without rollups (exact). */
export async function queryEachDevice(
  store: Pick<TelemetryStore, 'query'>,
  q: FleetQuery,
): Promise<FleetSeries> {
  const values = new Map<number, (number | null)[]>()
  const windows = Math.ceil((q.stop - q.start) / q.everyMs)
  for (const devicePk of q.devicePks) {
    const row: (number | null)[] = new Array(windows).fill(null)
    for (const p of await store.query({ ...q, devicePk, limit: Math.max(1, windows) }))
      row[Math.floor((p.time - q.start) / q.everyMs)] = p.value
    values.set(devicePk, row)
  }
  return { values, pendingHours: 0 }
}
