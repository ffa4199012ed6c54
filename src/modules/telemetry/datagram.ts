import { isStoredType, RANGES, STORED_TYPES, type StoredType } from './measurement-types.ts'

/** One measurement as the device sent it, with its time already parsed to epoch ms. */
export interface Measurement {
  t: number
  type: string
  val: number
}

/**
 * A telemetry datagram in the compact layout: sample times, and per type one value per sample
 * (null where that sample lacks the type). Its identity is (device, t0, seq).
 */
export interface Datagram {
  devicePk: number
  deviceId: string
  seq: number
  t0: number
  times: number[]
  values: Partial<Record<StoredType, (number | null)[]>>
  other: Record<string, (number | null)[]> | null
  outOfRange: { type: string; t: number; val: number }[]
}

/** A datagram's samples and columns, before the device and seq are known (see SamplesBuilder). */
export type DatagramSamples = Omit<Datagram, 'devicePk' | 'deviceId' | 'seq'>

export const FLAG_OUT_OF_RANGE = 1

/** Groups a flat list of measurements into samples (one per distinct time) and typed columns. */
export function toDatagram(
  devicePk: number,
  deviceId: string,
  seq: number,
  measurements: Measurement[],
): Datagram {
  return datagramOf(devicePk, deviceId, seq, toSamples(measurements))
}

/** The datagram of a device's samples. */
export function datagramOf(devicePk: number, deviceId: string, seq: number, s: DatagramSamples): Datagram {
  return {
    devicePk,
    deviceId,
    seq,
    t0: s.t0,
    times: s.times,
    values: s.values,
    other: s.other,
    outOfRange: s.outOfRange,
  }
}

/** The samples and typed columns of a flat list of measurements. */
export function toSamples(measurements: Measurement[]): DatagramSamples {
  const { times, sampleOf } = samplesOf(measurements)
  const values: Partial<Record<StoredType, (number | null)[]>> = {}
  let other: Record<string, (number | null)[]> | null = null
  const outOfRange: Datagram['outOfRange'] = []
  for (let k = 0; k < measurements.length; k++) {
    const m = measurements[k] as Measurement
    const i = sampleOf[k] as number
    let column: (number | null)[]
    if (isStoredType(m.type)) {
      column = values[m.type] ??= new Array(times.length).fill(null)
      const [min, max] = RANGES[m.type]
      if (m.val < min || m.val > max) outOfRange.push({ type: m.type, t: m.t, val: m.val })
    } else {
      other ??= {}
      column = other[m.type] ??= new Array(times.length).fill(null)
    }
    column[i] = m.val
  }
  return { t0: times[0] ?? 0, times, values, other, outOfRange }
}

/**
 * The distinct times, ascending, and the sample index of each measurement. Devices send the
 * types of a sample together and samples in order: that common case is one pass, no sorting.
 */
function samplesOf(measurements: Measurement[]): { times: number[]; sampleOf: number[] } {
  const times: number[] = []
  const sampleOf: number[] = new Array(measurements.length)
  for (let k = 0; k < measurements.length; k++) {
    const t = (measurements[k] as Measurement).t
    const last = times.length > 0 ? (times[times.length - 1] as number) : Number.NEGATIVE_INFINITY
    if (t < last) return samplesSorted(measurements)
    if (t > last) times.push(t)
    sampleOf[k] = times.length - 1
  }
  return { times, sampleOf }
}

/** The general case: times in any order, repeated or interleaved. */
function samplesSorted(measurements: Measurement[]): { times: number[]; sampleOf: number[] } {
  const times = [...new Set(measurements.map((m) => m.t))].sort((a, b) => a - b)
  const index = new Map(times.map((t, i) => [t, i]))
  return { times, sampleOf: measurements.map((m) => index.get(m.t) as number) }
}

/** The sample step when the times are evenly spaced (so no offsets need storing), else null. */
export function regularStep(times: number[]): number | null {
  if (times.length < 2) return 0
  const step = (times[1] as number) - (times[0] as number)
  for (let i = 2; i < times.length; i++) {
    if ((times[i] as number) - (times[i - 1] as number) !== step) return null
  }
  return step
}

/** Measurements a datagram holds (measured types only). */
export function measurementCount(d: Datagram): number {
  let n = 0
  const count = (column: (number | null)[] | undefined) => {
    if (column) for (const v of column) if (v !== null) n++
  }
  for (const type of STORED_TYPES) count(d.values[type])
  if (d.other) for (const type in d.other) count(d.other[type])
  return n
}
