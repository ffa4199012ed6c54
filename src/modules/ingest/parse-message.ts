import {
  BINARY_TELEMETRY_MARKER,
  MAX_MEASUREMENTS,
  MEASUREMENT_TYPE_PATTERN,
  type PayloadValidator,
  parseTopic as parseProtocolTopic,
  telemetryV1Validator,
  validators,
} from '../../protocol/index.ts'
import { type Measurement, toBaseUnit, toSamples } from '../telemetry/index.ts'
import { parseIsoTime } from './iso-time.ts'
import type { Base, Category, OtherKind, ParsedMessage, ParseLimits, RejectReason } from './parsed-message.ts'
import { readBinaryTelemetry } from './telemetry-binary-reader.ts'
import { readTelemetryFast } from './telemetry-fast-path.ts'

export type { Category, ParsedMessage, ParseLimits, RejectReason } from './parsed-message.ts'

export class Rejected {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
    readonly deviceId?: string,
    /** A well-formed message refused for its content (bad_unit): it arrived, so its seq is no gap. */
    readonly envelope?: { seq: number; ts: number; category: Category },
  ) {}
}

const V1_FIELD = new RegExp(MEASUREMENT_TYPE_PATTERN)

/** The device id and category a topic names, or undefined when it is not a device → server topic. */
export function parseTopic(topic: string): { deviceId: string; category: Category } | undefined {
  const route = parseProtocolTopic(topic, 'device→server')
  return route && { deviceId: route.deviceId, category: route.kind as Category }
}

function firstError(validator: PayloadValidator, v: unknown) {
  for (const e of validator.Errors(v)) return `${e.instancePath || '/'} ${e.message}`
  return 'invalid'
}

/**
 * Turns a raw MQTT message into a checked message, or says precisely why not.
 * Never throws: whatever arrives, the answer is a ParsedMessage or a Rejected.
 */
export function parseMessage(
  topic: string,
  payload: Buffer,
  now: number,
  limits: ParseLimits,
): ParsedMessage | Rejected {
  const route = parseTopic(topic)
  if (!route) return new Rejected('topic', `not a device topic: ${topic.slice(0, 100)}`)
  const { deviceId, category } = route
  if (payload.length > limits.maxBytes) {
    return new Rejected('too_large', `${payload.length} bytes > ${limits.maxBytes}`, deviceId)
  }
  if (category === 'telemetry' && payload[0] === BINARY_TELEMETRY_MARKER) {
    const read = readBinaryTelemetry(payload, deviceId, now, limits)
    if ('category' in read) return read
    const envelope = read.envelope && { ...read.envelope, category }
    return new Rejected(read.reason, read.detail, deviceId, envelope)
  }
  let body: unknown
  try {
    body = JSON.parse(payload.toString('utf8'))
  } catch {
    return new Rejected('json', 'payload is not JSON', deviceId)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return new Rejected('schema', 'payload must be a JSON object', deviceId)
  }
  const obj = body as Record<string, unknown>
  if (category === 'telemetry') {
    if (!('v' in obj)) return parseV1(deviceId, obj, now, limits)
    const common = readTelemetryFast(obj, deviceId, now, limits)
    if (common) return common
  }
  return parseObject(deviceId, category, obj, now, limits)
}

/**
 * The general path: a v2 payload of any kind, checked against its compiled schema (whose errors
 * word the rejection). readTelemetryFast answers for the common datagram with the same result.
 */
export function parseObject(
  deviceId: string,
  category: Category,
  obj: Record<string, unknown>,
  now: number,
  limits: ParseLimits,
): ParsedMessage | Rejected {
  // Typed loosely on purpose: each branch below reads the fields its own schema guarantees.
  const validator = validators[category]
  if (
    category === 'telemetry' &&
    Array.isArray(obj.measurements) &&
    obj.measurements.length > MAX_MEASUREMENTS
  ) {
    return new Rejected('too_many_measurements', `${obj.measurements.length} > ${MAX_MEASUREMENTS}`, deviceId)
  }
  if (!validator.Check(obj)) return new Rejected('schema', firstError(validator, obj), deviceId)
  const mismatch = checkDeviceId(obj, deviceId)
  if (mismatch) return mismatch
  const ts = checkTime(obj.ts as string, now, limits)
  if (typeof ts !== 'number') return new Rejected('timestamp', `ts: ${ts}`, deviceId)
  const seq = typeof obj.seq === 'number' ? obj.seq : null
  const base = { deviceId, ts, seq }

  switch (category) {
    case 'telemetry': {
      const measurements: Measurement[] = []
      // The types of one sample share its ts: parse each distinct string once.
      let lastTs: string | undefined
      let lastT = 0
      for (const m of obj.measurements as { ts: string; type: string; val: number; unit?: string }[]) {
        if (!Number.isFinite(m.val))
          return new Rejected('not_finite', `${m.type} is not a finite number`, deviceId)
        const val = toBaseUnit(m.type, m.unit, m.val)
        if (typeof val !== 'number') {
          const envelope = { seq: obj.seq as number, ts, category }
          return new Rejected('bad_unit', val.error, deviceId, envelope)
        }
        if (m.ts !== lastTs) {
          const t = checkTime(m.ts, now, limits)
          if (typeof t !== 'number') return new Rejected('timestamp', `measurement ts: ${t}`, deviceId)
          lastTs = m.ts
          lastT = t
        }
        measurements.push({ t: lastT, type: m.type, val })
      }
      return { ...base, category, samples: toSamples(measurements), v1: false }
    }
    case 'hello':
      return { ...base, category, fwVersion: obj.fw_version as string, uptimeS: obj.uptime_s as number }
    case 'status':
      return { ...base, seq: null, category, status: obj.status as 'online' | 'offline' }
    case 'command_ack': {
      const { cmd_id, result, detail } = obj as { cmd_id: string; result: 'accepted'; detail?: string }
      return { ...base, category, ack: { cmd_id, result, detail, ts: obj.ts as string } }
    }
    case 'ota_status': {
      const o = obj as Record<string, undefined>
      return {
        ...base,
        category,
        ota: {
          cmd_id: o.cmd_id as unknown as string,
          ota_state: o.ota_state as unknown as 'success',
          progress_pct: o.progress_pct,
          fw_version_target: o.fw_version_target,
          detail: o.detail,
          ts: obj.ts as string,
        },
      }
    }
    default: {
      // A kind without a reader of its own (none today): archived and counted as it is.
      // (ParsedMessage holds this variant whenever such a kind exists: the cast is the empty case.)
      const unread: Base & { category: OtherKind } = { ...base, category }
      return unread as unknown as ParsedMessage
    }
  }
}

/** The payload must name the device of its topic (and of the authenticated connection). */
function checkDeviceId(obj: Record<string, unknown>, deviceId: string): Rejected | undefined {
  if (obj.device_id === deviceId) return undefined
  return new Rejected(
    'device_mismatch',
    `payload device_id "${obj.device_id}" ≠ topic "${deviceId}"`,
    deviceId,
  )
}

/** A timestamp within the accepted window, or the reason it is not. */
function checkTime(text: string, now: number, limits: ParseLimits): number | string {
  const t = parseIsoTime(text)
  if (Number.isNaN(t)) return `"${text.slice(0, 40)}" is not an ISO 8601 time with a zone`
  if (t > now + limits.maxFutureMs) return `${text} lies too far in the future`
  if (t < now - limits.maxPastMs) return `${text} lies too far in the past`
  return t
}

/** Version 1: `{timestamp, device_id, <name>: number, ...}`; each numeric field is one measurement. */
function parseV1(deviceId: string, obj: Record<string, unknown>, now: number, limits: ParseLimits) {
  if (!telemetryV1Validator.Check(obj)) {
    return new Rejected('schema', `v1: ${firstError(telemetryV1Validator, obj)}`, deviceId)
  }
  const mismatch = checkDeviceId(obj, deviceId)
  if (mismatch) return mismatch
  const ts = checkTime(obj.timestamp as string, now, limits)
  if (typeof ts !== 'number') return new Rejected('timestamp', `timestamp: ${ts}`, deviceId)
  const measurements: Measurement[] = []
  for (const [key, value] of Object.entries(obj)) {
    if (typeof value !== 'number') continue
    if (!V1_FIELD.test(key)) return new Rejected('schema', `v1: field name "${key.slice(0, 40)}"`, deviceId)
    if (!Number.isFinite(value)) return new Rejected('not_finite', `${key} is not finite`, deviceId)
    measurements.push({ t: ts, type: key, val: value })
  }
  if (measurements.length === 0) return new Rejected('schema', 'v1: no numeric field', deviceId)
  if (measurements.length > MAX_MEASUREMENTS)
    return new Rejected('too_many_measurements', `${measurements.length}`, deviceId)
  const samples = toSamples(measurements)
  return { deviceId, category: 'telemetry' as const, ts, seq: null, samples, v1: true }
}
