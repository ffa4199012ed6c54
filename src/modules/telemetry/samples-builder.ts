import type { DatagramSamples } from './datagram.ts'
import { isStoredType, RANGES, type StoredType } from './measurement-types.ts'

type Column = (number | null)[]

/**
 * Builds a datagram's samples while its measurements are read, in their order, without a
 * measurement object each (the ingest's hot path). It takes only the common layout: sample times
 * that never go back. `add` answers false at the first time that does; the caller then groups a
 * flat list with toSamples (same result, any order).
 */
export class SamplesBuilder {
  private readonly times: number[] = []
  private readonly values: Partial<Record<StoredType, Column>> = {}
  private other: Record<string, Column> | null = null
  private readonly outOfRange: DatagramSamples['outOfRange'] = []

  add(t: number, type: string, val: number): boolean {
    const times = this.times
    const n = times.length
    if (n === 0 || t > (times[n - 1] as number)) times.push(t)
    else if (t < (times[n - 1] as number)) return false
    const i = times.length - 1
    let column: Column
    if (isStoredType(type)) {
      column = this.values[type] ??= []
      const [min, max] = RANGES[type]
      if (val < min || val > max) this.outOfRange.push({ type, t, val })
    } else {
      this.other ??= {}
      column = this.other[type] ??= []
    }
    // A type repeated within one sample: the last value wins, as in toSamples.
    while (column.length < i) column.push(null)
    if (column.length === i) column.push(val)
    else column[i] = val
    return true
  }

  /** The samples; every column as long as the times (null where a sample lacks the type). */
  finish(): DatagramSamples {
    const n = this.times.length
    for (const column of Object.values(this.values)) while (column.length < n) column.push(null)
    if (this.other)
      for (const column of Object.values(this.other)) while (column.length < n) column.push(null)
    const { times, values, other, outOfRange } = this
    return { t0: times[0] ?? 0, times, values, other, outOfRange }
  }
}
