import { Type } from 'typebox'
import { DEVICE_ID_PATTERN } from './device-id.ts'

/** Wire schemas of the messages of PROTOCOL.md v2; the device → server ones are compiled once. */
const DeviceIdField = Type.String({ pattern: DEVICE_ID_PATTERN })
const TimeField = Type.String({ minLength: 20, maxLength: 35 })
/** Text that is stored in PostgreSQL, which cannot hold a NUL character (U+0000). */
const FreeText = (maxLength: number) => Type.String({ maxLength, pattern: '^[^\\u0000]*$' })
const Seq = Type.Integer({ minimum: 0, maximum: 4294967295 })
const Uuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
})
const Envelope = {
  v: Type.Literal(2),
  device_id: DeviceIdField,
  ts: TimeField,
  seq: Seq,
}

export const MAX_MEASUREMENTS = 200

/** The name of a measurement (`type` in v2, a numeric field's name in v1). */
export const MEASUREMENT_TYPE_PATTERN = '^[a-z][a-z0-9_]{0,31}$'

export const TelemetryV2 = Type.Object({
  ...Envelope,
  msg_type: Type.Literal('telemetry'),
  measurements: Type.Array(
    Type.Object({
      ts: TimeField,
      type: Type.String({ pattern: MEASUREMENT_TYPE_PATTERN }),
      val: Type.Number(),
      unit: Type.Optional(FreeText(16)),
    }),
    { minItems: 1, maxItems: MAX_MEASUREMENTS },
  ),
})

export const Hello = Type.Object({
  ...Envelope,
  msg_type: Type.Literal('hello'),
  fw_version: Type.String({ pattern: '^\\d{1,4}\\.\\d{1,4}\\.\\d{1,6}([-+][0-9A-Za-z.-]{1,40})?$' }),
  uptime_s: Type.Integer({ minimum: 0 }),
  broker_connections: Type.Integer({ minimum: 0, maximum: 16 }),
  buf_usage_pct: Type.Integer({ minimum: 0, maximum: 100 }),
  temp_internal: Type.Optional(Type.Number()),
})

export const Status = Type.Object({
  v: Type.Literal(2),
  device_id: DeviceIdField,
  ts: TimeField,
  status: Type.Union([Type.Literal('online'), Type.Literal('offline')]),
  seq: Type.Optional(Seq),
  msg_type: Type.Optional(Type.Literal('status')),
})

export const CommandAck = Type.Object({
  ...Envelope,
  msg_type: Type.Literal('command_ack'),
  cmd_id: Uuid,
  result: Type.Union(['accepted', 'rejected', 'error', 'unsupported', 'expired'].map((r) => Type.Literal(r))),
  detail: Type.Optional(FreeText(2000)),
})

export const OtaStatus = Type.Object({
  ...Envelope,
  msg_type: Type.Literal('ota_status'),
  cmd_id: Uuid,
  ota_state: Type.Union(
    ['downloading', 'verifying', 'applying', 'success', 'failed'].map((r) => Type.Literal(r)),
  ),
  progress_pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  fw_version_target: Type.Optional(FreeText(64)),
  detail: Type.Optional(FreeText(2000)),
})

/** v1: a flat object with a timestamp, the device id, and numeric fields (one measurement each). */
export const TelemetryV1 = Type.Object({
  device_id: DeviceIdField,
  timestamp: TimeField,
})

/** What the server publishes on `iot/{id}/command`: signed (HMAC over the rest, see the commands module). */
export const Command = Type.Object({
  v: Type.Literal(2),
  device_id: DeviceIdField,
  cmd_id: Uuid,
  ts: TimeField,
  exp: TimeField,
  cmd: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' }),
  params: Type.Object({}, { additionalProperties: true }),
  sig: Type.String({ pattern: '^[0-9a-f]{64}$' }),
})
