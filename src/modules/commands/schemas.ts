import { type Static, Type } from 'typebox'
import { IsoTime, Nullable } from '../../platform/schemas.ts'
import { COMMAND_NAMES } from './command-params.ts'

export const COMMAND_STATUSES = [
  'pending',
  'sent',
  'accepted',
  'rejected',
  'error',
  'unsupported',
  'expired',
  'timeout',
] as const
export type CommandStatus = (typeof COMMAND_STATUSES)[number]

export const ACK_RESULTS = ['accepted', 'rejected', 'error', 'unsupported', 'expired'] as const
export type AckResult = (typeof ACK_RESULTS)[number]

export const OTA_STATES = ['downloading', 'verifying', 'applying', 'success', 'failed'] as const
export type OtaState = (typeof OTA_STATES)[number]

const CommandNameSchema = Type.Enum([...COMMAND_NAMES], { description: COMMAND_NAMES.join(', ') })
const StatusSchema = Type.Enum([...COMMAND_STATUSES], {
  description:
    'pending → sent → accepted | rejected | error | unsupported | expired (reached the device after its exp), or timeout',
})

export const CmdIdParams = Type.Object({ cmd_id: Type.String({ format: 'uuid' }) })

export const CommandCreate = Type.Object(
  {
    cmd: CommandNameSchema,
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'update_config: any of sampling_cadence_ms (100–60000), send_interval_s (1–3600), hello_interval_s ' +
          '(5–3600), brokers (1–5 × {host, port}), at least one; start_ota: fw_version (semver), fw_url ' +
          '(https), fw_sha256 (64 hex), fw_size_bytes (positive integer); the others: none',
      }),
    ),
  },
  { additionalProperties: false },
)
export type CommandCreate = Static<typeof CommandCreate>

export const CommandIssued = Type.Object({
  cmd_id: Type.String({ format: 'uuid' }),
  device_id: Type.String(),
  cmd: Type.String(),
  status: StatusSchema,
  message: Type.String(),
})
export type CommandIssued = Static<typeof CommandIssued>

const OtaHistoryEntry = Type.Object({
  state: Type.String(),
  progress_pct: Nullable(Type.Number()),
  at: IsoTime,
})

export const OtaProgress = Type.Object(
  {
    state: Type.Enum([...OTA_STATES]),
    progress_pct: Nullable(Type.Number({ minimum: 0, maximum: 100 })),
    fw_version_target: Nullable(Type.String()),
    detail: Nullable(Type.String()),
    updated_at: IsoTime,
    reported_at: Nullable(IsoTime),
    history: Type.Array(OtaHistoryEntry, { description: 'one entry per state the upgrade went through' }),
    confirmed: Type.Optional(
      Type.Boolean({ description: 'a hello after the upgrade reported fw_version_target' }),
    ),
    confirmed_at: Type.Optional(IsoTime),
    mismatch_fw_version: Type.Optional(
      Type.String({ description: 'the other version a hello reported after the upgrade' }),
    ),
    mismatch_at: Type.Optional(IsoTime),
  },
  { additionalProperties: true },
)
export type OtaProgress = Static<typeof OtaProgress>

export const Command = Type.Object({
  cmd_id: Type.String({ format: 'uuid' }),
  device_id: Type.String(),
  cmd: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown()),
  status: StatusSchema,
  detail: Nullable(Type.String()),
  ota: Nullable(OtaProgress),
  created_at: IsoTime,
  sent_at: Nullable(IsoTime),
  acked_at: Nullable(IsoTime),
  updated_at: IsoTime,
})
export type Command = Static<typeof Command>

export const CommandListQuery = Type.Object({
  status: Type.Optional(StatusSchema),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  offset: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 }),
})
export type CommandListQuery = Static<typeof CommandListQuery>

export const AckBody = Type.Object(
  {
    result: Type.Enum([...ACK_RESULTS]),
    detail: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
)
export type AckBody = Static<typeof AckBody>

export const CommandKey = Type.Object({
  device_id: Type.String(),
  command_key: Type.String({ pattern: '^[0-9a-f]{64}$', description: '32 bytes, hex; the HMAC-SHA256 key' }),
  created_at: IsoTime,
  rotated_at: Nullable(IsoTime),
})
export type CommandKey = Static<typeof CommandKey>
