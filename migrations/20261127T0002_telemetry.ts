import { type Kysely, sql } from 'kysely'

/**
 * Time series in a compact layout: one row per telemetry datagram, one float8 array per
 * measurement type aligned with the sample times. A DC datagram of 10 samples × (V, I) is one row
 * of ~300 bytes instead of 20 narrow rows of ~90 bytes each. The key is the datagram's identity
 * (device, first sample time, seq), so storing a redelivered datagram again changes nothing.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('telemetry')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('t0', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    // Sample times: t0 + i × step_ms when regular (offsets null), else t0 + offsets_ms[i].
    .addColumn('n', 'smallint', (c) => c.notNull())
    .addColumn('step_ms', 'integer')
    .addColumn('offsets_ms', sql`integer[]`)
    .addColumn('voltage_dc', sql`float8[]`)
    .addColumn('current_dc', sql`float8[]`)
    .addColumn('voltage_ac', sql`float8[]`)
    .addColumn('current_ac', sql`float8[]`)
    .addColumn('frequency', sql`float8[]`)
    .addColumn('pf', sql`float8[]`)
    .addColumn('thd_v', sql`float8[]`)
    .addColumn('thd_i', sql`float8[]`)
    .addColumn('temperature', sql`float8[]`)
    .addColumn('battery', sql`float8[]`)
    // Types outside the list above: {"type": [value or null per sample]}.
    .addColumn('other', 'jsonb')
    .addColumn('flags', 'smallint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('telemetry_pk', ['device_pk', 't0', 'seq'])
    .execute()

  // Gaps in a device's seq that never filled: integration of energy never bridges them.
  await db.schema
    .createTable('seq_gaps')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('from_seq', 'bigint', (c) => c.notNull())
    .addColumn('to_seq', 'bigint', (c) => c.notNull())
    .addColumn('from_ts', 'timestamptz', (c) => c.notNull())
    .addColumn('to_ts', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('seq_gaps_device_idx').on('seq_gaps').columns(['device_pk', 'to_ts']).execute()

  // Energy registers per device and interval (ENERGY_INTERVAL), recomputed from stored samples.
  await db.schema
    .createTable('energy_intervals')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('start', 'timestamptz', (c) => c.notNull())
    .addColumn('interval_s', 'integer', (c) => c.notNull())
    .addColumn('import_wh', 'float8', (c) => c.notNull())
    .addColumn('export_wh', 'float8', (c) => c.notNull())
    .addColumn('apparent_vah', 'float8')
    .addColumn('reactive_varh', 'float8')
    .addColumn('covered_ms', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('energy_intervals_pk', ['device_pk', 'start'])
    .execute()

  // Intervals whose registers must be recomputed (new, late or gap-affected samples).
  await db.schema
    .createTable('energy_dirty')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('start', 'timestamptz', (c) => c.notNull())
    .addColumn('marked_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`clock_timestamp()`))
    .addPrimaryKeyConstraint('energy_dirty_pk', ['device_pk', 'start'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['energy_dirty', 'energy_intervals', 'seq_gaps', 'telemetry']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
