import {
  BINARY_MAX_SAMPLES,
  BINARY_MAX_TYPES,
  BINARY_MAX_UNIT_BYTES,
  BINARY_TELEMETRY_FORMAT,
  MAX_MEASUREMENTS,
  MEASUREMENT_TYPE_PATTERN,
} from '../../protocol/index.ts'
import { type DatagramSamples, isStoredType, RANGES, type StoredType, unitScale } from '../telemetry/index.ts'
import type { ParsedMessage, ParseLimits, RejectReason } from './parsed-message.ts'

type Telemetry = Extract<ParsedMessage, { category: 'telemetry' }>

/** Why a binary datagram is refused; parseMessage turns it into its Rejected. */
export interface BinaryRefusal {
  reason: RejectReason
  detail: string
  /** Set for a well-formed datagram refused for its content (bad_unit): its seq counts as arrived. */
  envelope?: { seq: number; ts: number }
}

const TYPE_NAME = new RegExp(MEASUREMENT_TYPE_PATTERN)
/** The JSON schema's FreeText(16) for a unit, measured as readTelemetryFast does. */
const MAX_UNIT_CHARS = 16
const HEADER_AFTER_ID = 4 + 8 + 8 + 1

const refuse = (reason: RejectReason, detail: string): BinaryRefusal => ({ reason, detail })
const malformed = (what: string) => refuse('schema', `binary telemetry: ${what}`)

/**
 * Reads a binary telemetry datagram (src/protocol/binary-telemetry.ts) into the message a JSON
 * datagram with the same measurements gives (the tests compare the two), with the same checks and
 * rejection reasons. No text is parsed: the values are read as the doubles they are, and the sample
 * times are integers.
 */
export function readBinaryTelemetry(
  b: Buffer,
  deviceId: string,
  now: number,
  limits: ParseLimits,
): Telemetry | BinaryRefusal {
  if (b.length < 3) return malformed('truncated header')
  if (b[1] !== BINARY_TELEMETRY_FORMAT) return malformed(`format ${b[1]} (this server reads 1)`)
  const idLength = b[2] as number
  let at = 3 + idLength
  if (b.length < at + HEADER_AFTER_ID) return malformed('truncated header')
  if (!sameAscii(b, 3, idLength, deviceId)) {
    return refuse(
      'device_mismatch',
      `payload device_id "${b.toString('latin1', 3, at)}" ≠ topic "${deviceId}"`,
    )
  }
  const seq = b.readUInt32LE(at)
  const ts = readTime(b, at + 4)
  const t0 = readTime(b, at + 12)
  const typeCount = b[at + 20] as number
  at += HEADER_AFTER_ID
  const timeError = checkTime(ts, now, limits)
  if (timeError) return refuse('timestamp', `ts: ${timeError}`)
  if (typeCount < 1 || typeCount > BINARY_MAX_TYPES)
    return malformed(`${typeCount} types (1–${BINARY_MAX_TYPES})`)

  const types = readTypes(b, at, typeCount)
  if ('reason' in types) return types
  at = types.end
  const typeList = types.list

  if (at + 2 > b.length) return malformed('truncated before the samples')
  const sampleCount = b.readUInt16LE(at)
  at += 2
  const sampleBytes = 4 + 8 * typeCount
  if (sampleCount < 1 || sampleCount > BINARY_MAX_SAMPLES) {
    return malformed(`${sampleCount} samples (1–${BINARY_MAX_SAMPLES})`)
  }
  if (b.length !== at + sampleCount * sampleBytes) {
    return malformed(`${b.length} bytes, the header announces ${at + sampleCount * sampleBytes}`)
  }

  // The columns built directly (as SamplesBuilder would): a sample without any value has no time,
  // and a type without any value no column.
  const times: number[] = []
  const columns: ((number | null)[] | undefined)[] = new Array(typeCount)
  const outOfRange: DatagramSamples['outOfRange'] = []
  let count = 0
  let lastOffset = -1
  for (let i = 0; i < sampleCount; i++, at += sampleBytes) {
    const offset = b.readUInt32LE(at)
    if (offset <= lastOffset) return malformed('sample offsets must increase')
    lastOffset = offset
    const t = t0 + offset
    const sampleTimeError = checkTime(t, now, limits)
    if (sampleTimeError) return refuse('timestamp', `sample ${i}: ${sampleTimeError}`)
    const n = times.length
    for (let k = 0; k < typeCount; k++) {
      const val = b.readDoubleLE(at + 4 + 8 * k)
      if (Number.isNaN(val)) continue // no value of this type in this sample
      const type = typeList[k] as TypeInfo
      if (!Number.isFinite(val)) return refuse('not_finite', `${type.name} is not a finite number`)
      if (++count > MAX_MEASUREMENTS) return refuse('too_many_measurements', `> ${MAX_MEASUREMENTS}`)
      if (type.unitError) return { reason: 'bad_unit', detail: type.unitError, envelope: { seq, ts } }
      const value = (val * type.mul) / type.div
      if (times.length === n) times.push(t)
      let column = columns[k]
      if (!column) column = columns[k] = []
      while (column.length < n) column.push(null)
      column.push(value)
      if (value < type.min || value > type.max) outOfRange.push({ type: type.name, t, val: value })
    }
  }
  if (count === 0) return malformed('no measurement (every value NaN)')
  const values: DatagramSamples['values'] = {}
  let other: DatagramSamples['other'] = null
  for (let k = 0; k < typeCount; k++) {
    const column = columns[k]
    if (!column) continue
    while (column.length < times.length) column.push(null)
    const type = typeList[k] as TypeInfo
    if (type.stored) {
      values[type.name as StoredType] = column
    } else {
      other ??= {}
      other[type.name] = column
    }
  }
  const samples: DatagramSamples = { t0: times[0] as number, times, values, other, outOfRange }
  return { deviceId, category: 'telemetry', ts, seq, samples, v1: false }
}

/** A type of the datagram's list, with what each of its values needs. */
interface TypeInfo {
  name: string
  stored: boolean
  /** The plausible range (out of it: flagged, as SamplesBuilder does); ±∞ for other types. */
  min: number
  max: number
  mul: number
  div: number
  unitError?: string
}

/**
 * The type lists last read, by their bytes: a meter sends the same list in every datagram, so
 * reading it is one comparison, without a string made or a pattern tested. Bounded (a meter
 * inventing lists only replaces entries).
 */
const recentTypeLists: { bytes: Uint8Array; list: TypeInfo[] }[] = []
const RECENT_TYPE_LISTS = 16
let nextReplaced = 0

function readTypes(
  b: Buffer,
  start: number,
  typeCount: number,
): { list: TypeInfo[]; end: number } | BinaryRefusal {
  for (const recent of recentTypeLists) {
    const end = start + recent.bytes.length
    if (
      end <= b.length &&
      recent.list.length === typeCount &&
      b.compare(recent.bytes, 0, recent.bytes.length, start, end) === 0
    ) {
      return { list: recent.list, end }
    }
  }
  const list: TypeInfo[] = []
  let at = start
  for (let k = 0; k < typeCount; k++) {
    const nameLength = b[at] ?? 0
    const unitLength = b[at + 1 + nameLength]
    if (unitLength === undefined) return malformed('truncated type list')
    const name = b.toString('latin1', at + 1, at + 1 + nameLength)
    if (!TYPE_NAME.test(name)) return malformed(`type name "${name.slice(0, 40)}"`)
    if (list.some((t) => t.name === name)) return malformed(`type ${name} listed twice`)
    at += 2 + nameLength
    if (unitLength > BINARY_MAX_UNIT_BYTES || at + unitLength > b.length) return malformed(`unit of ${name}`)
    const unit = unitLength === 0 ? undefined : b.toString('utf8', at, at + unitLength)
    if (unit !== undefined && (unit.length > MAX_UNIT_CHARS || unit.includes('\u0000'))) {
      return malformed(`unit of ${name}: at most ${MAX_UNIT_CHARS} characters, no NUL`)
    }
    at += unitLength
    list.push(typeInfo(name, unit))
  }
  const entry = { bytes: new Uint8Array(b.subarray(start, at)), list }
  if (recentTypeLists.length < RECENT_TYPE_LISTS) recentTypeLists.push(entry)
  else recentTypeLists[nextReplaced++ % RECENT_TYPE_LISTS] = entry
  return { list, end: at }
}

function typeInfo(name: string, unit: string | undefined): TypeInfo {
  const stored = isStoredType(name)
  const [min, max] = stored ? RANGES[name] : [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]
  const scale = unitScale(name, unit)
  if ('error' in scale) return { name, stored, min, max, mul: 1, div: 1, unitError: scale.error }
  return { name, stored, min, max, mul: scale.mul, div: scale.div }
}

/** i64 little-endian ms as two words; exact for any time a meter sends (|ms| < 2^53). */
function readTime(b: Buffer, at: number): number {
  return b.readInt32LE(at + 4) * 2 ** 32 + b.readUInt32LE(at)
}

function sameAscii(b: Buffer, at: number, length: number, text: string): boolean {
  if (length !== text.length) return false
  for (let k = 0; k < length; k++) if (b[at + k] !== text.charCodeAt(k)) return false
  return true
}

/** Why a time is outside the accepted window, or undefined. */
function checkTime(t: number, now: number, limits: ParseLimits): string | undefined {
  if (t > now + limits.maxFutureMs) return `${isoOrNumber(t)} lies too far in the future`
  if (t < now - limits.maxPastMs) return `${isoOrNumber(t)} lies too far in the past`
  return undefined
}

function isoOrNumber(t: number): string {
  const d = new Date(t)
  return Number.isNaN(d.getTime()) ? `${t} ms` : d.toISOString()
}
