/** The part of the configuration the archive module reads: the S3 bucket (unset = files under DATA_DIR). */
export interface ArchiveConfig {
  readonly S3_BUCKET?: string
  readonly S3_ENDPOINT?: string
  readonly S3_REGION: string
  /** With S3_SECRET_ACCESS_KEY (the configuration checks the pair); neither = the SDK's credential chain. */
  readonly S3_ACCESS_KEY_ID?: string
  readonly S3_SECRET_ACCESS_KEY?: string
  readonly S3_FORCE_PATH_STYLE: boolean
  /** Unset: 60 with S3_BUCKET, 0 on files. */
  readonly ARCHIVE_OBJECT_PERIOD_S?: number
}
