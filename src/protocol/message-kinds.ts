import type { TSchema } from 'typebox'
import { Command, CommandAck, Hello, OtaStatus, Status, TelemetryV1, TelemetryV2 } from './message-schemas.ts'

export type Direction = 'device→server' | 'server→device'
export type Party = 'device' | 'server'

/** One row of the protocol (PROTOCOL.md, Topics): everything the server knows about a message kind. */
export interface MessageKind {
  /** The topic is `iot/{device_id}/{suffix}`. */
  suffix: string
  direction: Direction
  /** The QoS its sender publishes at. */
  qos: 1 | 2
  /** The payload's schema (v2). */
  schema: TSchema
  /** The v1 payload still accepted on the same topic (no `v` field), if any. */
  v1Schema?: TSchema
  /** Archived under `{device_id}/{kind}/…` (every device → server message is). */
  archived: boolean
  /** Who may publish to it: a device only to its own id's topic. */
  publisher: Party
  /** Who may subscribe to it: a device only to its own id's topic, and only without wildcards. */
  subscriber: Party
  /** Published retained (and kept by the embedded broker); also the payload of the device's will. */
  retained: boolean
}

/**
 * The wire protocol, defined once: the parser, the ingest's subscriptions, the broker's ACL and
 * retain policy, the archive's categories, the command outbox and the simulator read this table.
 * A new device → server kind is one entry here plus its handler in the ingest.
 */
export const MESSAGE_KINDS = {
  telemetry: {
    suffix: 'telemetry',
    direction: 'device→server',
    qos: 2,
    schema: TelemetryV2,
    v1Schema: TelemetryV1,
    archived: true,
    publisher: 'device',
    subscriber: 'server',
    retained: false,
  },
  hello: {
    suffix: 'hello',
    direction: 'device→server',
    qos: 2,
    schema: Hello,
    archived: true,
    publisher: 'device',
    subscriber: 'server',
    retained: false,
  },
  status: {
    suffix: 'status',
    direction: 'device→server',
    qos: 1,
    schema: Status,
    archived: true,
    publisher: 'device',
    subscriber: 'server',
    retained: true,
  },
  command_ack: {
    suffix: 'command/ack',
    direction: 'device→server',
    qos: 2,
    schema: CommandAck,
    archived: true,
    publisher: 'device',
    subscriber: 'server',
    retained: false,
  },
  ota_status: {
    suffix: 'ota/status',
    direction: 'device→server',
    qos: 1,
    schema: OtaStatus,
    archived: true,
    publisher: 'device',
    subscriber: 'server',
    retained: false,
  },
  command: {
    suffix: 'command',
    direction: 'server→device',
    qos: 2,
    schema: Command,
    archived: false,
    publisher: 'server',
    subscriber: 'device',
    retained: false,
  },
} as const satisfies Record<string, MessageKind>

export type MessageKindName = keyof typeof MESSAGE_KINDS
type KindsWhere<F extends keyof MessageKind, V> = {
  [K in MessageKindName]: (typeof MESSAGE_KINDS)[K] extends Record<F, V> ? K : never
}[MessageKindName]
/** The kinds a device sends (the ingest's categories). */
export type DeviceKindName = KindsWhere<'direction', 'device→server'>
/** The archive's categories: the kinds archived. */
export type ArchiveCategory = KindsWhere<'archived', true>

const names = Object.keys(MESSAGE_KINDS) as MessageKindName[]
const kindsWhere = <N extends MessageKindName>(keep: (kind: MessageKind) => boolean) =>
  names.filter((name) => keep(MESSAGE_KINDS[name])) as N[]

export const DEVICE_KINDS = kindsWhere<DeviceKindName>((k) => k.direction === 'device→server')
export const ARCHIVE_CATEGORIES = kindsWhere<ArchiveCategory>((k) => k.archived)
