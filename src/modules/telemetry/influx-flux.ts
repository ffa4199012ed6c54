import {
  flux,
  fluxDateTime,
  fluxDuration,
  fluxInteger,
  fluxString,
  type ParameterizedQuery,
} from '@influxdata/influxdb-client'
import { FIELD, MEASUREMENT, SEQ_FIELD, SEQ_MEASUREMENT } from './influx-points.ts'
import type { AggregateFn, SeqRun, SeriesQuery } from './store.ts'

/*
 * Flux built only with the client's `flux` tag and its literal helpers: every value from outside
 * (bucket, device id, metric, times, window, limit) becomes an escaped Flux literal, never query text.
 */

/** Aggregate functions by name; Flux functions cannot be parameters, so only these constants are ever used. */
const AGGREGATES: Record<AggregateFn, ParameterizedQuery> = {
  mean: flux`mean`,
  min: flux`min`,
  max: flux`max`,
  last: flux`last`,
  sum: flux`sum`,
  count: flux`count`,
}

function aggregate(fn: string): ParameterizedQuery {
  if (!Object.hasOwn(AGGREGATES, fn)) throw new Error(`unknown aggregate function: ${fn}`)
  return AGGREGATES[fn as AggregateFn]
}

/** InfluxDB keeps int64 nanoseconds: 1677-09-21 to 2262-04-11. A range beyond is clamped to it. */
const INFLUX_MIN_MS = -9_223_372_036_854
const INFLUX_MAX_MS = 9_223_372_036_854
const at = (ms: number) =>
  fluxDateTime(new Date(Math.min(INFLUX_MAX_MS, Math.max(INFLUX_MIN_MS, ms))).toISOString())

/** The `value` field of one device in [start, stop). */
function deviceRange(bucket: string, deviceId: string, start: number, stop: number): ParameterizedQuery {
  return flux`from(bucket: ${fluxString(bucket)})
  |> range(start: ${at(start)}, stop: ${at(stop)})
  |> filter(fn: (r) => r._measurement == ${fluxString(MEASUREMENT)} and r._field == ${fluxString(FIELD)})
  |> filter(fn: (r) => r.device_id == ${fluxString(deviceId)})`
}

/** One metric of a device: raw points, or windows of `everyMs` (stamped with their start), by time. */
export function seriesFlux(bucket: string, deviceId: string, q: SeriesQuery): ParameterizedQuery {
  const points = flux`${deviceRange(bucket, deviceId, q.start, q.stop)}
  |> filter(fn: (r) => r.metric == ${fluxString(q.metric)})`
  const every = q.everyMs ? Math.max(1, Math.round(q.everyMs)) : undefined
  const series = every
    ? flux`${points}
  |> aggregateWindow(every: ${fluxDuration(`${every}ms`)}, fn: ${aggregate(q.fn)}, createEmpty: false, timeSrc: "_start")`
    : points
  return flux`${series}
  |> group()
  |> sort(columns: ["_time"])
  |> limit(n: ${fluxInteger(Math.max(0, Math.trunc(q.limit)))})
  |> keep(columns: ["_time", "_value"])`
}

/** The three derived powers of a device in [start, stop), one row per sample time. */
export function powerFlux(bucket: string, deviceId: string, start: number, stop: number): ParameterizedQuery {
  return flux`${deviceRange(bucket, deviceId, start, stop)}
  |> filter(fn: (r) => r.metric == "power_active" or r.metric == "power_apparent" or r.metric == "power_reactive" or r.metric == "reactive_sign")
  |> keep(columns: ["_time", "_value", "metric"])
  |> group()
  |> pivot(rowKey: ["_time"], columnKey: ["metric"], valueColumn: "_value")
  |> sort(columns: ["_time"])`
}

/** The seqs of a device's datagrams whose first sample lies in [start, stop] and that fall in the run. */
export function seqFlux(bucket: string, deviceId: string, run: SeqRun, start: number): ParameterizedQuery {
  const from = fluxInteger(run.from)
  const to = fluxInteger(run.to)
  // A run that wraps past 2^32 − 1 is two intervals.
  const inRun =
    run.from <= run.to
      ? flux`r._value >= ${from} and r._value <= ${to}`
      : flux`r._value >= ${from} or r._value <= ${to}`
  return flux`from(bucket: ${fluxString(bucket)})
  |> range(start: ${at(start)}, stop: ${at(run.toTs + 1)})
  |> filter(fn: (r) => r._measurement == ${fluxString(SEQ_MEASUREMENT)} and r._field == ${fluxString(SEQ_FIELD)})
  |> filter(fn: (r) => r.device_id == ${fluxString(deviceId)})
  |> filter(fn: (r) => ${inRun})
  |> group()
  |> keep(columns: ["_value"])`
}
