import { MAX_MEASUREMENTS, MEASUREMENT_TYPE_PATTERN } from '../../protocol/index.ts'
import { SamplesBuilder, toBaseUnit } from '../telemetry/index.ts'
import { parseIsoTime } from './iso-time.ts'
import type { ParsedMessage, ParseLimits } from './parsed-message.ts'

type Telemetry = Extract<ParsedMessage, { category: 'telemetry' }>

const TYPE_NAME = new RegExp(MEASUREMENT_TYPE_PATTERN)
const MAX_SEQ = 4294967295
/** The schema's FreeText(16) for a unit: UTF-16 length bounds the grapheme count it checks. */
const MAX_UNIT = 16

/** A time the general path accepts too: an ISO time (all ASCII, 20–35 characters) in the window. */
function timeOf(text: unknown, now: number, limits: ParseLimits): number | undefined {
  if (typeof text !== 'string') return undefined
  const t = parseIsoTime(text)
  if (!(t <= now + limits.maxFutureMs && t >= now - limits.maxPastMs)) return undefined // NaN too
  return t
}

/**
 * The common v2 datagram, read in one pass without the compiled validator (which costs as much as
 * JSON.parse), straight into its samples: no object per measurement, and nothing of the parsed
 * JSON kept alive (what lives on until its batch is stored costs garbage collection). It answers only when
 * the message is certainly accepted: every check here is at least as strict as the schema's and
 * the general path's (parseMessage). Anything else — an error, an odd field, a unit to convert that
 * does not fit — gives undefined, and the general path decides and words the rejection.
 */
export function readTelemetryFast(
  obj: Record<string, unknown>,
  deviceId: string,
  now: number,
  limits: ParseLimits,
): Telemetry | undefined {
  // The topic's id follows the same grammar as the schema's device_id: equal means valid.
  if (obj.v !== 2 || obj.msg_type !== 'telemetry' || obj.device_id !== deviceId) return undefined
  const seq = obj.seq
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) return undefined
  const ts = timeOf(obj.ts, now, limits)
  const list = obj.measurements
  if (ts === undefined || !Array.isArray(list)) return undefined
  if (list.length === 0 || list.length > MAX_MEASUREMENTS) return undefined
  const samples = new SamplesBuilder()
  // A datagram repeats a few type names and sample times: each distinct one is checked once.
  const names: string[] = []
  let lastTs: unknown
  let lastT = 0
  for (let k = 0; k < list.length; k++) {
    const m = list[k] as Record<string, unknown> | null
    if (typeof m !== 'object' || m === null) return undefined
    const { type, val, unit } = m
    if (typeof val !== 'number' || !Number.isFinite(val) || typeof type !== 'string') return undefined
    if (!names.includes(type)) {
      if (!TYPE_NAME.test(type)) return undefined
      names.push(type)
    }
    if (m.ts !== lastTs) {
      const t = timeOf(m.ts, now, limits)
      if (t === undefined) return undefined
      lastTs = m.ts
      lastT = t
    }
    let value = val
    if (unit !== undefined) {
      if (typeof unit !== 'string' || unit.length > MAX_UNIT || unit.includes('\u0000')) return undefined
      const base = toBaseUnit(type, unit, val)
      if (typeof base !== 'number') return undefined
      value = base
    }
    // Sample times that go back: toSamples sorts them on the general path.
    if (!samples.add(lastT, type, value)) return undefined
  }
  return { deviceId, category: 'telemetry', ts, seq, samples: samples.finish(), v1: false }
}
