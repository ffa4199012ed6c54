import type { ColumnType, Generated, JSONColumnType } from 'kysely'

/** Row types of every table, mirroring migrations/. Modules own their tables; this file only types them. */
type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
type Json = JSONColumnType<Record<string, unknown>, string, string>

export interface DevicesTable {
  id: Generated<number>
  device_id: string
  device_name: string
  device_type: string | null
  location: string | null
  status: Generated<string>
  connection_status: Generated<'online' | 'offline' | 'unknown'>
  last_seen: NullableTimestamp
  fw_version: string | null
  metadata: Json
  config: Json
  created_at: Timestamp
  updated_at: Timestamp
}

export interface DeviceConfigsTable {
  id: Generated<number>
  device_pk: number
  config: Json
  source: string
  cmd_id: string | null
  created_at: Timestamp
}

export interface DeviceAlertsTable {
  id: Generated<number>
  device_pk: number
  alert_type: string
  severity: string
  message: string
  details: JSONColumnType<Record<string, unknown> | null, string | null, string | null>
  acknowledged: Generated<boolean>
  acknowledged_at: NullableTimestamp
  occurrences: Generated<number>
  last_seen_at: Timestamp
  resolved_at: NullableTimestamp
  created_at: Timestamp
}

export interface DeviceCommandsTable {
  cmd_id: string
  device_pk: number
  cmd: string
  params: Json
  status: Generated<string>
  detail: string | null
  ota: JSONColumnType<Record<string, unknown> | null, string | null, string | null>
  created_at: Timestamp
  sent_at: NullableTimestamp
  acked_at: NullableTimestamp
  updated_at: Timestamp
}

export interface DeviceSeqTrackingTable {
  device_pk: number
  state: Json
  updated_at: Timestamp
}

export interface Database {
  devices: DevicesTable
  device_configs: DeviceConfigsTable
  device_alerts: DeviceAlertsTable
  device_commands: DeviceCommandsTable
  device_seq_tracking: DeviceSeqTrackingTable
}
