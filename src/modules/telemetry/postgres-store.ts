import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { CompactedHorizon, withoutCompacted } from './compacted-keys.ts'
import { markLateUnits } from './compaction.ts'
import type { Datagram } from './datagram.ts'
import { parseFloat8Array } from './float8-array.ts'
import { type DerivedType, isDerivedType, isStoredType } from './measurement-types.ts'
import { type DerivedPower, derivePower, powerSampleOf, reactiveSign } from './power.ts'
import { RecordsInsert } from './records-insert.ts'
import { markRollupsDirty, queryFleetRollups, queryRollups, rollupFor, wholeWindows } from './rollups.ts'
import { storedSeqsInTable } from './seq-lookups.ts'
import {
  type AggregateFn,
  type FleetQuery,
  type FleetSeries,
  type PowerRange,
  type PowerSample,
  queryEachDevice,
  type SeqAsk,
  type SeqRun,
  type SeriesPoint,
  type SeriesQuery,
  type TelemetryStore,
} from './store.ts'
import { clampTime } from './time-range.ts'

/** The widest span of samples one datagram may cover (send interval ≤ 3600 s), for range scans on t0. */
const MAX_SPAN_MS = 3_660_000

/** How long a fleet query brings dirty rollups up to date before it answers (the rest is reported). */
const FLEET_REFRESH_BUDGET_MS = 500
const iso = (t: number) => new Date(clampTime(t)).toISOString()

/** Epoch-ms time of sample i (1-based) of a telemetry row, as SQL. */
const sampleTime = sql`(date_part('epoch', t.t0) * 1000 + coalesce(t.offsets_ms[u.i], (u.i - 1) * t.step_ms))`

/** The value expression of a metric over the unnested columns of a row. */
function valueSource(metric: string): { unnest: RawBuilder<unknown>; value: RawBuilder<unknown> } {
  // Derived powers never come here: they are computed by derivePower (query() below).
  if (isStoredType(metric)) {
    return { unnest: sql`unnest(${sql.ref(`t.${metric}`)}) with ordinality as u(v, i)`, value: sql`u.v` }
  }
  // Any other type lives in the jsonb column.
  return {
    unnest: sql`jsonb_array_elements(t.other -> ${metric}) with ordinality as u(j, i)`,
    value: sql`(case when jsonb_typeof(u.j) = 'number' then (u.j)::text::float8 end)`,
  }
}

/** A telemetry row's timing and electrical columns, as powerSamplesMany reads them. */
interface PowerArrays {
  k: number
  t0: number
  step_ms: number | null
  offsets_ms: number[] | null
  vdc: (number | null)[] | null
  idc: (number | null)[] | null
  vac: (number | null)[] | null
  iac: (number | null)[] | null
  pf: (number | null)[] | null
  /** The meter's own Q and phase angle (optional types, in the row's `other` column). */
  qr: (number | null)[] | null
  pa: (number | null)[] | null
}

type ElectricalColumn = 'vdc' | 'idc' | 'vac' | 'iac' | 'pf'
/** The same row as selected: the float8[] columns as text, for parseFloat8Array. */
type PowerRow = Omit<PowerArrays, ElectricalColumn | 'qr' | 'pa'> &
  Record<ElectricalColumn, string | null> & { qr: (number | null)[] | null; pa: (number | null)[] | null }

/** A jsonb array of the `other` column as the drivers return it (parsed), numbers or null. */
const numbers = (v: unknown): (number | null)[] | null =>
  Array.isArray(v) ? v.map((x) => (typeof x === 'number' ? x : null)) : null

const float8s = (text: string | null) => (text === null ? null : parseFloat8Array(text))

const at = (values: (number | null)[] | null, i: number): number | undefined => values?.[i] ?? undefined

/**
 * The power samples of one row inside the range, each derived by derivePower (power.ts): the one
 * definition of P/S/Q every store uses. Samples without P are left out.
 */
function unpackPower(row: PowerArrays, range: PowerRange, into: PowerSample[]): void {
  eachSample(row, range, (t, power, signed) => {
    const sample = powerSampleOf(t, power, signed)
    if (sample) into.push(sample)
  })
}

/** Every sample of a row inside the range with its derived powers. */
function eachSample(
  row: PowerArrays,
  range: PowerRange,
  visit: (t: number, power: DerivedPower, signed: boolean) => void,
) {
  const t0 = Number(row.t0)
  const step = row.step_ms === null ? null : Number(row.step_ms)
  // Like unnest() of several arrays: as many samples as the longest (a null array counts as empty).
  const n = Math.max(...[row.vdc, row.idc, row.vac, row.iac, row.pf].map((values) => values?.length ?? 0))
  for (let i = 0; i < n; i++) {
    const offset = row.offsets_ms ? row.offsets_ms[i] : step === null ? undefined : i * step
    if (offset === undefined || offset === null) continue
    const t = t0 + Number(offset)
    if (t < range.start || t >= range.stop) continue
    const values = {
      voltage_dc: at(row.vdc, i),
      current_dc: at(row.idc, i),
      voltage_ac: at(row.vac, i),
      current_ac: at(row.iac, i),
      pf: at(row.pf, i),
      power_reactive: at(row.qr, i),
      phase_angle: at(row.pa, i),
    }
    visit(t, derivePower(values), reactiveSign(values) !== undefined)
  }
}

/** Aggregates of a window of derived values, as the SQL ones below compute them. */
const JS_AGGREGATES: Record<AggregateFn, (values: number[]) => number> = {
  mean: (v) => v.reduce((a, b) => a + b, 0) / v.length,
  min: (v) => v.reduce((a, b) => Math.min(a, b)),
  max: (v) => v.reduce((a, b) => Math.max(a, b)),
  sum: (v) => v.reduce((a, b) => a + b, 0),
  count: (v) => v.length,
  last: (v) => v[v.length - 1] as number,
}

const AGGREGATES = {
  // In numeric, clamped back to float8: float8 sums of huge readings overflow (an error, a 500).
  mean: sql`greatest(least(avg(value::numeric), 1e308), -1e308)::float8`,
  min: sql`min(value)`,
  max: sql`max(value)`,
  sum: sql`greatest(least(sum(value::numeric), 1e308), -1e308)::float8`,
  count: sql`count(value)::float8`,
  last: sql`(array_agg(value order by time desc))[1]`,
}

/** The time-series store on PostgreSQL or PGlite (the same SQL on both). */
export class PostgresTelemetryStore implements TelemetryStore {
  readonly name = 'postgres'

  /** The row writer, shared with the compaction job (compaction-job.ts). */
  readonly records: RecordsInsert

  /** Which datagrams may be copies of compacted ones (checked against their keys). */
  private readonly horizon: CompactedHorizon

  /** `compactAfterMs`: when set, datagrams of hours that may be compacted already are marked for the job. */
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly compactAfterMs = 0,
  ) {
    this.records = new RecordsInsert(db)
    this.horizon = new CompactedHorizon(db, compactAfterMs)
  }

  /**
   * Stores one row per datagram; a row whose key (device_pk, t0, seq) is there already is skipped,
   * and so is a datagram of an hour that may be compacted whose key is among the compacted ones
   * (checked under the unit's lock, in a transaction of its own: late data is rare).
   */
  async write(datagrams: Datagram[]): Promise<void> {
    if (datagrams.length === 0) return
    const checkBefore = await this.horizon.checkBefore()
    const late: Datagram[] = []
    const fresh: Datagram[] = []
    for (const d of datagrams) (d.t0 < checkBefore ? late : fresh).push(d)
    if (fresh.length > 0) await this.insertRows(fresh)
    if (late.length > 0) {
      await this.records.ready() // before the transaction: PGlite has one connection, ready() reads through the pool
      await this.db.transaction().execute(async (trx) => {
        const kept = await withoutCompacted(trx, late)
        if (kept.length > 0) await this.records.write(kept, trx)
      })
    }
    // Both after the rows (a mark must not be consumed before them), side by side: no added latency.
    await Promise.all([
      markRollupsDirty(this.db, datagrams),
      this.compactAfterMs > 0 ? markLateUnits(this.db, datagrams, this.compactAfterMs) : undefined,
    ])
  }

  /**
   * The rows as one binary telemetry[] parameter of a short, constant statement (records-insert.ts).
   * bench/telemetry-write.ts overrides it with the statement before, its baseline.
   */
  protected insertRows(datagrams: Datagram[]): Promise<void> {
    return this.records.write(datagrams)
  }

  async storedSeqs(devicePk: number, run: SeqRun): Promise<Set<number>> {
    return (await storedSeqsInTable(this.db, [{ devicePk, run }]))[0] as Set<number>
  }

  storedSeqsMany(asks: readonly SeqAsk[]): Promise<Set<number>[]> {
    return storedSeqsInTable(this.db, asks)
  }

  /** From the rollups in one statement when they answer the windows, else one query per device. */
  queryFleet(q: FleetQuery): Promise<FleetSeries> {
    const bucket = rollupFor(q)
    return bucket ? queryFleetRollups(this.db, q, bucket, FLEET_REFRESH_BUDGET_MS) : queryEachDevice(this, q)
  }

  async query(q: SeriesQuery): Promise<SeriesPoint[]> {
    if (isDerivedType(q.metric)) return this.derivedQuery(q, q.metric)
    // Windows of whole minutes or hours of a stored type: from the coarsest rollup that fits.
    const bucket = rollupFor(q)
    if (bucket) return queryRollups(this.db, q, bucket)
    // A range not on window boundaries (start=-24h): its whole windows from the rollups, the
    // partial first and last window from the raw samples. No window is split between the two.
    const whole = wholeWindows(q)
    if (whole) {
      const head = whole.start > q.start ? await this.rawQuery({ ...q, stop: whole.start }) : []
      const middle = await queryRollups(this.db, { ...q, ...whole }, whole.bucket)
      const tail = whole.stop < q.stop ? await this.rawQuery({ ...q, start: whole.stop }) : []
      return [...head, ...middle, ...tail].slice(0, q.limit)
    }
    return this.rawQuery(q)
  }

  /** Raw points, or windows aggregated from the raw samples. */
  private async rawQuery(q: SeriesQuery): Promise<SeriesPoint[]> {
    const { unnest, value } = valueSource(q.metric)
    const points = sql`
      select ${sampleTime}::float8 as time, (${value})::float8 as value
      from telemetry t cross join lateral ${unnest}
      where t.device_pk = ${q.devicePk}
        and t.t0 >= ${iso(q.start - MAX_SPAN_MS)}::timestamptz
        and t.t0 < ${iso(q.stop)}::timestamptz`
    const inRange = sql`select * from (${points}) p where time >= ${q.start} and time < ${q.stop} and value is not null`
    let query: RawBuilder<SeriesPoint>
    if (q.everyMs) {
      query = sql<SeriesPoint>`
        select floor(time / ${q.everyMs}) * ${q.everyMs} as time, ${AGGREGATES[q.fn]} as value
        from (${inRange}) r group by 1 order by 1 limit ${q.limit}`
    } else {
      query = sql<SeriesPoint>`select time, value from (${inRange}) r order by time limit ${q.limit}`
    }
    const { rows } = await query.execute(this.db)
    return rows.map((r) => ({ time: Number(r.time), value: Number(r.value) }))
  }

  /** A derived power: the rows read as for energy, each sample through derivePower, aggregated here. */
  private async derivedQuery(q: SeriesQuery, metric: DerivedType): Promise<SeriesPoint[]> {
    const range = { devicePk: q.devicePk, start: q.start, stop: q.stop }
    const points: SeriesPoint[] = []
    for (const row of await this.powerRows([range])) {
      eachSample(row, range, (time, power) => {
        const value = power[metric]
        if (value !== undefined) points.push({ time, value })
      })
    }
    points.sort((a, b) => a.time - b.time)
    if (!q.everyMs) return points.slice(0, q.limit)
    const windows = new Map<number, number[]>()
    for (const p of points) {
      const start = Math.floor(p.time / q.everyMs) * q.everyMs
      const values = windows.get(start) ?? []
      values.push(p.value)
      windows.set(start, values)
    }
    const aggregate = JS_AGGREGATES[q.fn]
    return [...windows].slice(0, q.limit).map(([time, values]) => ({ time, value: aggregate(values) }))
  }

  async powerSamples(devicePk: number, start: number, stop: number): Promise<PowerSample[]> {
    return (await this.powerSamplesMany([{ devicePk, start, stop }]))[0] as PowerSample[]
  }

  /**
   * One statement for all ranges: each is joined to the telemetry rows of its device and time.
   * Rows come back whole (arrays), not one row per sample: the samples are unpacked here, which
   * costs both sides far less than unnesting them in SQL.
   */
  async powerSamplesMany(ranges: PowerRange[]): Promise<PowerSample[][]> {
    const out = ranges.map((): PowerSample[] => [])
    for (const row of await this.powerRows(ranges)) {
      unpackPower(row, ranges[row.k] as PowerRange, out[row.k] as PowerSample[])
    }
    for (const samples of out) samples.sort((a, b) => a.t - b.t)
    return out
  }

  /** The telemetry rows with electrical values of each range (k: the range's index), arrays parsed. */
  private async powerRows(ranges: PowerRange[]): Promise<PowerArrays[]> {
    if (ranges.length === 0) return []
    // The arrays as text, parsed by parseFloat8Array: the drivers' generic array parsers cost
    // several times more (PostgreSQL prints the same text either way).
    const { rows } = await sql<PowerRow>`
      select r.k, date_part('epoch', t.t0) * 1000 as t0, t.step_ms, t.offsets_ms,
        t.voltage_dc::text as vdc, t.current_dc::text as idc, t.voltage_ac::text as vac,
        t.current_ac::text as iac, t.pf::text as pf,
        t.other -> 'power_reactive' as qr, t.other -> 'phase_angle' as pa
      from unnest(
        ${ranges.map((r) => r.devicePk)}::int[],
        ${ranges.map((r) => r.start)}::float8[],
        ${ranges.map((r) => r.stop)}::float8[],
        ${ranges.map((r) => iso(r.start - MAX_SPAN_MS))}::timestamptz[],
        ${ranges.map((r) => iso(r.stop))}::timestamptz[]
      ) with ordinality as r(device_pk, start, stop, t0_from, t0_to, k)
      join telemetry t on t.device_pk = r.device_pk and t.t0 >= r.t0_from and t.t0 < r.t0_to
        -- Most rows after t0_from end before the range: skip the regular ones.
        and (t.offsets_ms is not null or date_part('epoch', t.t0) * 1000 + greatest((t.n - 1) * t.step_ms, 0) >= r.start)
        and (t.voltage_dc is not null or t.voltage_ac is not null)`.execute(this.db)
    return rows.map((row) => ({
      ...row,
      k: Number(row.k) - 1,
      vdc: float8s(row.vdc),
      idc: float8s(row.idc),
      vac: float8s(row.vac),
      iac: float8s(row.iac),
      pf: float8s(row.pf),
      qr: numbers(row.qr),
      pa: numbers(row.pa),
    }))
  }

  async ping(): Promise<void> {
    await sql`select 1 from telemetry limit 1`.execute(this.db)
  }

  async close(): Promise<void> {}
}
