import { Point } from '@influxdata/influxdb-client'
import type { Datagram } from './datagram.ts'
import { STORED_TYPES, UNITS } from './measurement-types.ts'
import { derivePower, reactiveSign } from './power.ts'

/** The one measurement all telemetry lives in; series differ by the tags device_id, metric and unit. */
export const MEASUREMENT = 'iot_telemetry'
export const FIELD = 'value'
/**
 * Each datagram's seq at its first sample time, in a measurement of its own (so no device type can
 * share its series): what storedSeqs reads for gap claims. Two datagrams of a device with the same
 * t0 keep one seq here, as their samples overwrite each other too.
 */
export const SEQ_MEASUREMENT = 'iot_seq'
export const SEQ_FIELD = 'seq'
/** An internal series: ±1 where the meter stated the sign of Q (PG reads the meter's own values instead). */
export const REACTIVE_SIGN = 'reactive_sign'

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v)

function point(
  deviceId: string,
  metric: string,
  unit: string | undefined,
  time: number,
  value: number,
): Point {
  // An empty tag value is left out of the line (pf and unknown types have no unit).
  return new Point(MEASUREMENT)
    .tag('device_id', deviceId)
    .tag('metric', metric)
    .tag('unit', unit ?? '')
    .floatField(FIELD, value)
    .timestamp(time)
}

/**
 * Every point of a datagram: one per sample and measured type (typed columns and `other`), plus the
 * derived powers of each sample, and its seq. Deterministic, so a rewrite hits the same series and timestamps,
 * which InfluxDB overwrites — the write is idempotent.
 */
export function datagramPoints(d: Datagram): Point[] {
  const points: Point[] = []
  d.times.forEach((time, i) => {
    for (const type of STORED_TYPES) {
      const v = d.values[type]?.[i]
      if (finite(v)) points.push(point(d.deviceId, type, UNITS[type], time, v))
    }
    for (const [type, column] of Object.entries(d.other ?? {})) {
      const v = column[i]
      if (finite(v)) points.push(point(d.deviceId, type, undefined, time, v))
    }
    const at = (type: 'voltage_dc' | 'current_dc' | 'voltage_ac' | 'current_ac' | 'pf') =>
      d.values[type]?.[i] ?? undefined
    const values = {
      voltage_dc: at('voltage_dc'),
      current_dc: at('current_dc'),
      voltage_ac: at('voltage_ac'),
      current_ac: at('current_ac'),
      pf: at('pf'),
      power_reactive: d.other?.power_reactive?.[i] ?? undefined,
      phase_angle: d.other?.phase_angle?.[i] ?? undefined,
    }
    const power = derivePower(values)
    for (const [metric, v] of Object.entries(power) as [keyof typeof power, number][]) {
      points.push(point(d.deviceId, metric, UNITS[metric], time, v))
    }
    // Whether the sign of power_reactive was measured (the energy read needs it; PostgreSQL reads the inputs).
    const sign = reactiveSign(values)
    if (power.power_reactive !== undefined && sign !== undefined)
      points.push(point(d.deviceId, REACTIVE_SIGN, undefined, time, sign))
  })
  points.push(
    new Point(SEQ_MEASUREMENT).tag('device_id', d.deviceId).intField(SEQ_FIELD, d.seq).timestamp(d.t0),
  )
  return points
}
