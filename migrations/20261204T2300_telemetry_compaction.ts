import { type Kysely, sql } from 'kysely'

/**
 * Compaction of telemetry at rest (module telemetry, compaction-job.ts). Raw rows older than
 * TELEMETRY_COMPACT_AFTER_H move into one row per device and hour of samples; these tables hold
 * the job's state:
 * - telemetry_compaction_state: the hour up to which every raw row was compacted (one row);
 * - telemetry_compaction_marks: hours of datagram t0 that received rows after they were due (late
 *   data), marked by the write path and merged by the next run.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('telemetry_compaction_state')
    .addColumn('id', 'boolean', (c) => c.primaryKey().defaultTo(true).check(sql`id`))
    .addColumn('compacted_before', 'timestamptz', (c) => c.notNull())
    .addColumn('rewritten_before', 'timestamptz')
    .execute()
  await db.schema
    .createTable('telemetry_compaction_marks')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('marked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addPrimaryKeyConstraint('telemetry_compaction_marks_pk', ['device_pk', 'hour'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('telemetry_compaction_marks').ifExists().execute()
  await db.schema.dropTable('telemetry_compaction_state').ifExists().execute()
}
