/** Device → server messages of PROTOCOL.md v2 and where each one goes. */
export type MessageType = 'telemetry' | 'hello' | 'command_ack' | 'ota_status'
export type PublishedType = MessageType | 'status'

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
  payload: string
  qos: 1 | 2
  retain: boolean
}

/** At most this many measurements in one telemetry datagram (PROTOCOL.md). */
export const MAX_MEASUREMENTS = 200

const SUFFIX: Record<PublishedType, string> = {
  telemetry: 'telemetry',
  hello: 'hello',
  command_ack: 'command/ack',
  ota_status: 'ota/status',
  status: 'status',
}

export const topicOf = (deviceId: string, type: PublishedType | 'command') =>
  `iot/${deviceId}/${type === 'command' ? 'command' : SUFFIX[type]}`

/** QoS 2 for data and acks, QoS 1 for the OTA progress and the retained status. */
export const qosOf = (type: PublishedType): 1 | 2 => (type === 'ota_status' || type === 'status' ? 1 : 2)

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
    qos: qosOf(type),
    retain: false,
  }
}

/** The retained online/offline status (no seq); also the payload of the will. */
export function statusMessage(deviceId: string, status: 'online' | 'offline', now = new Date()): Outgoing {
  return {
    type: 'status',
    topic: topicOf(deviceId, 'status'),
    payload: JSON.stringify({ v: 2, device_id: deviceId, ts: now.toISOString(), status }),
    qos: 1,
    retain: true,
  }
}

/** Splits one sampling window into datagram-sized chunks, never cutting a sample's readings apart. */
export function chunkMeasurements(measurements: Measurement[], perSample: number): Measurement[][] {
  const size = Math.max(perSample, MAX_MEASUREMENTS - (MAX_MEASUREMENTS % perSample))
  const chunks: Measurement[][] = []
  for (let i = 0; i < measurements.length; i += size) chunks.push(measurements.slice(i, i + size))
  return chunks
}
