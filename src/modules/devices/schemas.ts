import { type Static, Type } from 'typebox'
import { IsoTime, Nullable } from '../../platform/schemas.ts'
import { DEVICE_ID_DESCRIPTION, DEVICE_ID_PATTERN, LEGACY_DEVICE_ID_PATTERN } from '../../protocol/index.ts'

export const DeviceId = Type.String({
  pattern: DEVICE_ID_PATTERN,
  minLength: 1,
  maxLength: 64,
  description: DEVICE_ID_DESCRIPTION,
})
export const DeviceParams = Type.Object({ device_id: DeviceId })
/** Only for deleting a device registered under the older, looser grammar (e.g. `..`). */
export const LegacyDeviceParams = Type.Object({
  device_id: Type.String({ pattern: LEGACY_DEVICE_ID_PATTERN, minLength: 1, maxLength: 64 }),
})

export const ConnectionStatus = Type.Union([
  Type.Literal('online'),
  Type.Literal('offline'),
  Type.Literal('unknown'),
])
const LifecycleStatus = Type.String({
  pattern: '^[a-z][a-z0-9_]{0,31}$',
  description: 'lifecycle status such as active, inactive, maintenance (lower case, at most 32 characters)',
})
const Metadata = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), {
  description: 'free-form registration data (firmware, hardware revision, voltage system, ranges...)',
})
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max })

export const Device = Type.Object({
  id: Type.Integer(),
  device_id: Type.String(),
  device_name: Type.String(),
  device_type: Nullable(Type.String()),
  location: Nullable(Type.String()),
  status: Type.String(),
  connection_status: ConnectionStatus,
  last_seen: Nullable(IsoTime),
  fw_version: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  config: Type.Record(Type.String(), Type.Unknown()),
  created_at: IsoTime,
  updated_at: IsoTime,
})
export type Device = Static<typeof Device>

export const DeviceCreate = Type.Object(
  {
    device_id: DeviceId,
    device_name: Text(255),
    device_type: Type.Optional(Nullable(Text(64))),
    location: Type.Optional(Nullable(Text(255))),
    status: Type.Optional(LifecycleStatus),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
)
export type DeviceCreate = Static<typeof DeviceCreate>

export const DeviceUpdate = Type.Object(
  {
    device_name: Type.Optional(Text(255)),
    device_type: Type.Optional(Nullable(Text(64))),
    location: Type.Optional(Nullable(Text(255))),
    status: Type.Optional(LifecycleStatus),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
)
export type DeviceUpdate = Static<typeof DeviceUpdate>

export const DeviceListQuery = Type.Object({
  status: Type.Optional(LifecycleStatus),
  type: Type.Optional(Text(64)),
  connection_status: Type.Optional(ConnectionStatus),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'search id, name, location' })),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000 }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 }),
})
export type DeviceListQuery = Static<typeof DeviceListQuery>

export const DeviceStatus = Type.Object({
  device_id: Type.String(),
  connection_status: ConnectionStatus,
  last_seen: Nullable(IsoTime),
  fw_version: Nullable(Type.String()),
})

export const DeviceStatusUpdate = Type.Object(
  {
    connection_status: ConnectionStatus,
    fw_version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
)
export type DeviceStatusUpdate = Static<typeof DeviceStatusUpdate>

export const ConfigAuditEntry = Type.Object({
  id: Type.Integer(),
  config: Type.Record(Type.String(), Type.Unknown()),
  source: Type.String({ description: 'registration, update_config, ...' }),
  cmd_id: Nullable(Type.String()),
  created_at: IsoTime,
})
