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

export interface DeviceKeysTable {
  device_pk: number
  command_key: string
  created_at: Timestamp
  rotated_at: NullableTimestamp
}

/** The SHA-256 of each device's MQTT secret (module device-auth). */
export interface DeviceSecretsTable {
  device_pk: number
  secret_hash: string
  created_at: Timestamp
  rotated_at: NullableTimestamp
}

export interface DeviceSeqTrackingTable {
  device_pk: number
  state: Json
  updated_at: Timestamp
}

/** A block of a dedup window's payload digests (ingest seq-digests.ts). */
export interface DeviceSeqDigestsTable {
  device_pk: number
  boot: number
  block: number
  digests: Buffer
}

export interface IngestQuarantineTable {
  id: Generated<number>
  quarantined_at: Generated<Date>
  received_at: Timestamp
  device_id: string | null
  topic: string
  payload: Buffer
  stage: string
  error: string
  replica: string
}

export interface TelemetryTable {
  device_pk: number
  t0: Timestamp
  seq: number
  n: number
  step_ms: number | null
  offsets_ms: number[] | null
  voltage_dc: (number | null)[] | null
  current_dc: (number | null)[] | null
  voltage_ac: (number | null)[] | null
  current_ac: (number | null)[] | null
  frequency: (number | null)[] | null
  pf: (number | null)[] | null
  thd_v: (number | null)[] | null
  thd_i: (number | null)[] | null
  temperature: (number | null)[] | null
  battery: (number | null)[] | null
  other: JSONColumnType<Record<string, (number | null)[]> | null, string | null, string | null>
  flags: Generated<number>
}

export interface SeqGapsTable {
  id: Generated<number>
  device_pk: number
  from_seq: number
  to_seq: number
  from_ts: Timestamp
  to_ts: Timestamp
  created_at: Timestamp
}

export interface EnergyIntervalsTable {
  device_pk: number
  start: Timestamp
  interval_s: number
  import_wh: number
  export_wh: number
  apparent_vah: number | null
  reactive_varh: number | null
  apparent_import_vah: number | null
  apparent_export_vah: number | null
  reactive_import_inductive_varh: number | null
  reactive_import_capacitive_varh: number | null
  reactive_export_inductive_varh: number | null
  reactive_export_capacitive_varh: number | null
  reactive_unsigned_varh: number | null
  covered_ms: number
  updated_at: Timestamp
}

export interface EnergyDirtyTable {
  device_pk: number
  start: Timestamp
  marked_at: Timestamp
}

export interface ApiTokensTable {
  id: Generated<number>
  name: string
  role: 'viewer' | 'operator' | 'admin'
  token_hash: string
  created_at: Timestamp
  last_used_at: NullableTimestamp
  revoked_at: NullableTimestamp
}

/** Alert events waiting for (or done with) delivery to one target each (module alerts). */
export interface AlertOutboxTable {
  id: Generated<number>
  event_id: string
  target: string
  alert_id: number
  event: 'opened' | 'updated' | 'acknowledged' | 'resolved'
  payload: JSONColumnType<Record<string, unknown>, string, string>
  attempts: Generated<number>
  next_attempt_at: Timestamp
  last_error: string | null
  delivered_at: NullableTimestamp
  created_at: Timestamp
}

/** The last run of each background job (module retention). */
export interface MaintenanceRunsTable {
  job: string
  started_at: Timestamp
  finished_at: Timestamp
  replica: string
  ok: boolean
  result: JSONColumnType<Record<string, unknown>, string, string>
}

/** 1-minute and 1-hour rollups of stored types (module telemetry). */
export interface TelemetryRollupsTable {
  device_pk: number
  metric: string
  bucket_s: number
  start: Timestamp
  count: number
  sum: number
  min: number
  max: number
  first: number
  last: number
}

/** The (t0 ms, seq) of the compacted datagrams of a device-hour of t0 (telemetry compaction). */
export interface TelemetryCompactedKeysTable {
  device_pk: number
  hour: Timestamp
  t0s: string[]
  seqs: string[]
}

/** Device-hours whose rollups must be recomputed. */
export interface RollupDirtyTable {
  device_pk: number
  hour: Timestamp
  marked_at: Timestamp
}

/** Which bytes of a grouped archive object hold one device's lines of one category (module archive). */
export interface ArchiveSectionsTable {
  device_id: string
  category: string
  time_key: string
  byte_offset: ColumnType<number, number, number>
  byte_length: number
  lines: number
  first_at: Timestamp
  last_at: Timestamp
}

export interface Database {
  telemetry: TelemetryTable
  seq_gaps: SeqGapsTable
  energy_intervals: EnergyIntervalsTable
  energy_dirty: EnergyDirtyTable
  devices: DevicesTable
  device_configs: DeviceConfigsTable
  device_alerts: DeviceAlertsTable
  device_commands: DeviceCommandsTable
  device_keys: DeviceKeysTable
  device_seq_tracking: DeviceSeqTrackingTable
  device_seq_digests: DeviceSeqDigestsTable
  api_tokens: ApiTokensTable
  device_secrets: DeviceSecretsTable
  alert_outbox: AlertOutboxTable
  maintenance_runs: MaintenanceRunsTable
  telemetry_rollups: TelemetryRollupsTable
  telemetry_compacted_keys: TelemetryCompactedKeysTable
  rollup_dirty: RollupDirtyTable
  ingest_quarantine: IngestQuarantineTable
  archive_sections: ArchiveSectionsTable
}
