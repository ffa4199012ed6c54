import type { DeviceKindName } from '../../protocol/index.ts'
import type { DatagramSamples } from '../telemetry/index.ts'

// The shape of a checked message, shared by the general path (parse-message.ts) and the telemetry fast path.

/** A device → server message kind of the protocol table (src/protocol/message-kinds.ts). */
export type Category = DeviceKindName
/** The kinds read into fields of their own below; any other kind is archived and counted as it is. */
type ReadKind = 'telemetry' | 'hello' | 'status' | 'command_ack' | 'ota_status'
export type OtherKind = Exclude<Category, ReadKind>

export interface Base {
  deviceId: string
  category: Category
  /** The envelope's ts, epoch ms. */
  ts: number
  /** Absent on status and v1 messages (never deduplicated). */
  seq: number | null
}

export type ParsedMessage =
  | (Base & { category: 'telemetry'; samples: DatagramSamples; v1: boolean })
  | (Base & { category: 'hello'; fwVersion: string; uptimeS: number })
  | (Base & { category: 'status'; status: 'online' | 'offline' })
  | (Base & {
      category: 'command_ack'
      ack: {
        cmd_id: string
        result: 'accepted' | 'rejected' | 'error' | 'unsupported' | 'expired'
        detail?: string
        ts: string
      }
    })
  | (Base & {
      category: 'ota_status'
      ota: {
        cmd_id: string
        ota_state: 'downloading' | 'verifying' | 'applying' | 'success' | 'failed'
        progress_pct?: number
        fw_version_target?: string
        detail?: string
        ts: string
      }
    })
  | ([OtherKind] extends [never] ? never : Base & { category: OtherKind })

export interface ParseLimits {
  maxBytes: number
  /** How far a timestamp may lie in the future / past, ms. */
  maxFutureMs: number
  maxPastMs: number
}

/** Why a message is refused (the `reason` label of ingest_rejected_total). */
export type RejectReason =
  | 'topic'
  | 'too_large'
  | 'json'
  | 'schema'
  | 'device_mismatch'
  | 'timestamp'
  | 'not_finite'
  | 'too_many_measurements'
  | 'unknown_device'
  | 'bad_unit'
