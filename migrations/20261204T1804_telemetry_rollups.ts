import { type Kysely, sql } from 'kysely'

/**
 * Rollups of stored measurement types (module telemetry): per device, type and 1-minute or 1-hour
 * bucket, count/sum/min/max/first/last of the non-null samples. They are recomputed from the raw
 * samples of each hour marked dirty by a write (rollup_dirty), so late data and copies give the
 * same rollup as data in order, once: a recompute replaces, it never adds.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('telemetry_rollups')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('metric', 'varchar(32)', (c) => c.notNull())
    .addColumn('bucket_s', 'integer', (c) => c.notNull().check(sql`bucket_s in (60, 3600)`))
    .addColumn('start', 'timestamptz', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('sum', 'float8', (c) => c.notNull())
    .addColumn('min', 'float8', (c) => c.notNull())
    .addColumn('max', 'float8', (c) => c.notNull())
    .addColumn('first', 'float8', (c) => c.notNull())
    .addColumn('last', 'float8', (c) => c.notNull())
    .addPrimaryKeyConstraint('telemetry_rollups_pk', ['device_pk', 'metric', 'bucket_s', 'start'])
    .execute()
  await db.schema
    .createTable('rollup_dirty')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('marked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addPrimaryKeyConstraint('rollup_dirty_pk', ['device_pk', 'hour'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('rollup_dirty').ifExists().execute()
  await db.schema.dropTable('telemetry_rollups').ifExists().execute()
}
