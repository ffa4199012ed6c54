import {
  type DeviceKindName,
  encodeBinaryTelemetry,
  MAX_MEASUREMENTS,
  MESSAGE_KINDS,
  topicOf,
} from '../../protocol/index.ts'

/** Device → server messages of PROTOCOL.md v2 (the protocol's table); all but status are enveloped. */
export type PublishedType = DeviceKindName
export type MessageType = Exclude<PublishedType, 'status'>

export interface Measurement {
  ts: string
  type: string
  val: number
  unit?: string
}

export type CommandResult = 'accepted' | 'rejected' | 'error' | 'unsupported' | 'expired'
export type OtaState = 'downloading' | 'verifying' | 'applying' | 'success' | 'failed'

/** One message ready for the wire: the same bytes go to every broker. */
export interface Outgoing {
  type: PublishedType
  topic: string
  payload: string | Buffer
  qos: 1 | 2
  retain: boolean
}

/** At most this many measurements in one telemetry datagram (PROTOCOL.md). */
export { MAX_MEASUREMENTS }

/** An enveloped message: {v: 2, device_id, ts, seq, msg_type, ...body}. */
export function envelope(
  deviceId: string,
  type: MessageType,
  seq: number,
  body: Record<string, unknown>,
  now = new Date(),
): Outgoing {
  const message = { v: 2, device_id: deviceId, ts: now.toISOString(), seq, msg_type: type, ...body }
  return {
    type,
    topic: topicOf(deviceId, type),
    payload: JSON.stringify(message),
    qos: MESSAGE_KINDS[type].qos,
    retain: MESSAGE_KINDS[type].retained,
  }
}

/**
 * A telemetry datagram in the binary encoding (PROTOCOL.md, "Binary telemetry"): the same
 * measurements as the JSON form, grouped by sample time and type.
 */
export function binaryTelemetryMessage(
  deviceId: string,
  seq: number,
  measurements: Measurement[],
  now = new Date(),
): Outgoing {
  const types: { name: string; unit?: string }[] = []
  const column = new Map<string, number>()
  const samples: { offsetMs: number; values: (number | null)[] }[] = []
  const t0 = Date.parse(measurements[0]?.ts ?? now.toISOString())
  let last: { t: number; values: (number | null)[] } | undefined
  for (const m of measurements) {
    let k = column.get(m.type)
    if (k === undefined) {
      k = types.push({ name: m.type, ...(m.unit === undefined ? {} : { unit: m.unit }) }) - 1
      column.set(m.type, k)
    }
    const t = Date.parse(m.ts)
    if (last?.t !== t) {
      last = { t, values: [] }
      samples.push({ offsetMs: t - t0, values: last.values })
    }
    last.values[k] = m.val
  }
  const payload = encodeBinaryTelemetry({ deviceId, seq, ts: now.getTime(), t0, types, samples })
  return {
    type: 'telemetry',
    topic: topicOf(deviceId, 'telemetry'),
    payload,
    qos: MESSAGE_KINDS.telemetry.qos,
    retain: false,
  }
}

/** The retained online/offline status (no seq); also the payload of the will. */
export function statusMessage(deviceId: string, status: 'online' | 'offline', now = new Date()): Outgoing {
  return {
    type: 'status',
    topic: topicOf(deviceId, 'status'),
    payload: JSON.stringify({ v: 2, device_id: deviceId, ts: now.toISOString(), status }),
    qos: MESSAGE_KINDS.status.qos,
    retain: MESSAGE_KINDS.status.retained,
  }
}

/** Splits one sampling window into datagram-sized chunks, never cutting a sample's readings apart. */
export function chunkMeasurements(measurements: Measurement[], perSample: number): Measurement[][] {
  const size = Math.max(perSample, MAX_MEASUREMENTS - (MAX_MEASUREMENTS % perSample))
  const chunks: Measurement[][] = []
  for (let i = 0; i < measurements.length; i += size) chunks.push(measurements.slice(i, i + size))
  return chunks
}
