/** The part of the configuration the retention module reads. */
export interface RetentionConfig {
  readonly RETENTION_RAW_DAYS: number
  readonly RETENTION_ROLLUP_DAYS: number
  readonly RETENTION_ARCHIVE_DAYS: number
  readonly RETENTION_INTERVAL_S: number
  readonly TELEMETRY_PARTITIONS_AHEAD_DAYS: number
  /** The replica's name in the job's lease. */
  readonly MQTT_CLIENT_ID: string
  /** Set: raw samples live in InfluxDB, whose bucket retention drops them. */
  readonly INFLUX_URL?: string
}
