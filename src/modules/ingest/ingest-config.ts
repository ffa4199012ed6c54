/** The part of the configuration the ingest module reads (app.ts hands it the whole Config). */
export interface IngestConfig {
  /** The journal lives under DATA_DIR/journal. */
  readonly DATA_DIR: string
  readonly SHUTDOWN_TIMEOUT_MS: number
  /** This replica's name in quarantine rows and gap claims. */
  readonly MQTT_CLIENT_ID: string
  readonly MQTT_SHARED_GROUP?: string
  /** 'reject' or 'auto_register'. */
  readonly UNKNOWN_DEVICE_POLICY: string
  readonly INGEST_MAX_BYTES: number
  readonly INGEST_MAX_FUTURE_S: number
  readonly INGEST_MAX_PAST_S: number
  readonly INGEST_DEVICE_RATE_MAX: number
  readonly INGEST_FLUSH_MS: number
  readonly INGEST_BATCH_MAX: number
  readonly INGEST_MAX_INFLIGHT: number
  readonly INGEST_MAX_PENDING_BYTES: number
  readonly INGEST_GAP_GRACE_MS: number
  readonly INGEST_DEDUP_WINDOW: number
  readonly DEVICE_CACHE_MAX: number
  readonly LIVENESS_SWEEP_MS: number
  readonly ARCHIVE_FLUSH_MS: number
  readonly ARCHIVE_BUFFER_MAX_BYTES: number
}
