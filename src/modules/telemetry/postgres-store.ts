import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { Datagram } from './datagram.ts'
import { parseFloat8Array } from './float8-array.ts'
import { isStoredType } from './measurement-types.ts'
import { RecordsInsert } from './records-insert.ts'
import { markRollupsDirty, queryRollups, rollupFor } from './rollups.ts'
import type { PowerRange, PowerSample, SeriesPoint, SeriesQuery, TelemetryStore } from './store.ts'
import { insertAsValues } from './values-insert.ts'

/** The widest span of samples one datagram may cover (send interval ≤ 3600 s), for range scans on t0. */
const MAX_SPAN_MS = 3_660_000

const iso = (t: number) => new Date(t).toISOString()

export interface PostgresStoreOptions {
  /**
   * How write() sends rows: 'records' (the default) as one binary telemetry[] parameter of a short,
   * constant statement (records-insert.ts); 'values' as the multi-row VALUES statement with 17
   * parameters a row, the statement before, kept as the baseline of bench/telemetry-write.ts.
   */
  writeStatement?: 'records' | 'values'
}

/** Epoch-ms time of sample i (1-based) of a telemetry row, as SQL. */
const sampleTime = sql`(date_part('epoch', t.t0) * 1000 + coalesce(t.offsets_ms[u.i], (u.i - 1) * t.step_ms))`

/** P: DC V × I wins when present (as derivePower does); AC only with a PF inside −1…1. */
const ACTIVE_POWER = sql`coalesce(u.vdc * u.idc, case when u.pf between -1 and 1 then u.vac * u.iac * u.pf end)`

/** The value expression of a metric over the unnested columns of a row. */
function valueSource(metric: string): { unnest: RawBuilder<unknown>; value: RawBuilder<unknown> } {
  if (isStoredType(metric)) {
    return { unnest: sql`unnest(${sql.ref(`t.${metric}`)}) with ordinality as u(v, i)`, value: sql`u.v` }
  }
  const power = sql`unnest(t.voltage_dc, t.current_dc, t.voltage_ac, t.current_ac, t.pf)
    with ordinality as u(vdc, idc, vac, iac, pf, i)`
  if (metric === 'power_active') return { unnest: power, value: ACTIVE_POWER }
  if (metric === 'power_apparent') return { unnest: power, value: sql`u.vac * u.iac` }
  if (metric === 'power_reactive') {
    // greatest() ignores nulls, so guard: no reactive power where there is no AC apparent power.
    const q = sql`case when u.vac * u.iac * u.pf is not null and u.pf between -1 and 1 then sqrt(greatest((u.vac * u.iac) ^ 2 - (${ACTIVE_POWER}) ^ 2, 0)) end`
    return { unnest: power, value: q }
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
}

type ElectricalColumn = 'vdc' | 'idc' | 'vac' | 'iac' | 'pf'
/** The same row as selected: the float8[] columns as text, for parseFloat8Array. */
type PowerRow = Omit<PowerArrays, ElectricalColumn> & Record<ElectricalColumn, string | null>

const float8s = (text: string | null) => (text === null ? null : parseFloat8Array(text))

const at = (values: (number | null)[] | null, i: number): number | null => values?.[i] ?? null

/**
 * The power samples of one row inside the range, as ACTIVE_POWER computes them in SQL: DC V × I
 * when both are there, else AC V × I × PF with a PF inside −1…1; samples without P are left out.
 */
function unpackPower(row: PowerArrays, range: PowerRange, into: PowerSample[]): void {
  const t0 = Number(row.t0)
  const step = row.step_ms === null ? null : Number(row.step_ms)
  // Like unnest() of several arrays: as many samples as the longest (a null array counts as empty).
  const n = Math.max(...[row.vdc, row.idc, row.vac, row.iac, row.pf].map((values) => values?.length ?? 0))
  for (let i = 0; i < n; i++) {
    const offset = row.offsets_ms ? row.offsets_ms[i] : step === null ? undefined : i * step
    if (offset === undefined || offset === null) continue
    const t = t0 + Number(offset)
    if (t < range.start || t >= range.stop) continue
    const vdc = at(row.vdc, i)
    const idc = at(row.idc, i)
    const vac = at(row.vac, i)
    const iac = at(row.iac, i)
    const pf = at(row.pf, i)
    let p: number | null = vdc !== null && idc !== null ? vdc * idc : null
    if (p === null && pf !== null && pf >= -1 && pf <= 1 && vac !== null && iac !== null) p = vac * iac * pf
    if (p === null) continue
    if (vac === null || iac === null) {
      into.push({ t, p })
      continue
    }
    const s = vac * iac
    into.push({ t, p, s, q: Math.sqrt(Math.max(s * s - p * p, 0)) })
  }
}

const AGGREGATES = {
  mean: sql`avg(value)`,
  min: sql`min(value)`,
  max: sql`max(value)`,
  sum: sql`sum(value)`,
  count: sql`count(value)::float8`,
  last: sql`(array_agg(value order by time desc))[1]`,
}

/** The time-series store on PostgreSQL or PGlite (the same SQL on both). */
export class PostgresTelemetryStore implements TelemetryStore {
  readonly name = 'postgres'

  private readonly insert: (datagrams: Datagram[]) => Promise<void>

  constructor(
    private readonly db: Kysely<Database>,
    options: PostgresStoreOptions = {},
  ) {
    if (options.writeStatement === 'values') {
      this.insert = (datagrams) => insertAsValues(db, datagrams)
    } else {
      const records = new RecordsInsert(db)
      this.insert = (datagrams) => records.write(datagrams)
    }
  }

  /** Stores one row per datagram; a row whose key (device_pk, t0, seq) is there already is skipped. */
  async write(datagrams: Datagram[]): Promise<void> {
    if (datagrams.length === 0) return
    await this.insert(datagrams)
    await markRollupsDirty(this.db, datagrams)
  }

  async query(q: SeriesQuery): Promise<SeriesPoint[]> {
    // Windows of whole minutes or hours of a stored type: from the coarsest rollup that fits.
    const bucket = rollupFor(q)
    if (bucket) return queryRollups(this.db, q, bucket)
    const { unnest, value } = valueSource(q.metric)
    const points = sql`
      select ${sampleTime}::float8 as time, (${value})::float8 as value
      from telemetry t cross join lateral ${unnest}
      where t.device_pk = ${q.devicePk}
        and t.t0 >= ${new Date(q.start - MAX_SPAN_MS).toISOString()}::timestamptz
        and t.t0 < ${new Date(q.stop).toISOString()}::timestamptz`
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
    if (ranges.length === 0) return out
    // The arrays as text, parsed by parseFloat8Array: the drivers' generic array parsers cost
    // several times more (PostgreSQL prints the same text either way).
    const { rows } = await sql<PowerRow>`
      select r.k, date_part('epoch', t.t0) * 1000 as t0, t.step_ms, t.offsets_ms,
        t.voltage_dc::text as vdc, t.current_dc::text as idc, t.voltage_ac::text as vac,
        t.current_ac::text as iac, t.pf::text as pf
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
    for (const row of rows) {
      const k = Number(row.k) - 1
      const arrays: PowerArrays = {
        ...row,
        vdc: float8s(row.vdc),
        idc: float8s(row.idc),
        vac: float8s(row.vac),
        iac: float8s(row.iac),
        pf: float8s(row.pf),
      }
      unpackPower(arrays, ranges[k] as PowerRange, out[k] as PowerSample[])
    }
    for (const samples of out) samples.sort((a, b) => a.t - b.t)
    return out
  }

  async ping(): Promise<void> {
    await sql`select 1 from telemetry limit 1`.execute(this.db)
  }

  async close(): Promise<void> {}
}
