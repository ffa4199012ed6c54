import { type Static, Type } from 'typebox'
import { IsoTime, Nullable } from '../../platform/schemas.ts'
import { DEVICE_ID_PATTERN } from '../../protocol/index.ts'

export const Severity = Type.Union(
  [Type.Literal('info'), Type.Literal('warning'), Type.Literal('error'), Type.Literal('critical')],
  { description: 'info, warning, error or critical' },
)
export type Severity = Static<typeof Severity>

export const Alert = Type.Object({
  id: Type.Integer(),
  device_id: Type.String(),
  alert_type: Type.String(),
  severity: Type.String(),
  message: Type.String(),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
  acknowledged: Type.Boolean(),
  acknowledged_at: Nullable(IsoTime),
  occurrences: Type.Integer({ description: 'how often it was raised while open' }),
  last_seen_at: IsoTime,
  resolved_at: Nullable(IsoTime),
  created_at: IsoTime,
})
export type Alert = Static<typeof Alert>

export const AlertCreate = Type.Object(
  {
    alert_type: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', default: 'general' }),
    severity: Type.Optional(Severity),
    message: Type.String({ minLength: 1, maxLength: 2000 }),
  },
  { additionalProperties: false },
)
export type AlertCreate = Static<typeof AlertCreate>

const BoolString = Type.Boolean({ description: 'true or false' })

export const DeviceAlertsQuery = Type.Object({ acknowledged: Type.Optional(BoolString) })

export const AlertListQuery = Type.Object({
  device_id: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
  alert_type: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
  severity: Type.Optional(Severity),
  acknowledged: Type.Optional(BoolString),
  resolved: Type.Optional(BoolString),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 }),
})
export type AlertListQuery = Static<typeof AlertListQuery>

export const AlertParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
