import { type Kysely, sql } from 'kysely'

/**
 * The keys of compacted datagrams (module telemetry, compacted-keys.ts): one row per device and
 * hour of datagram t0 (a compaction unit) with the (t0, seq) of every datagram whose samples moved
 * into compact rows. They replace the stub each raw row used to leave behind (~112 B a datagram
 * with its primary-key entry): a redelivered copy is recognised here and stored once, and the
 * ingest's seq lookups still find the seqs. Stubs written before stay valid and are folded into
 * this table when their unit is compacted again.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('telemetry_compacted_keys')
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('t0s', sql`int8[]`, (c) => c.notNull())
    .addColumn('seqs', sql`int8[]`, (c) => c.notNull())
    .addPrimaryKeyConstraint('telemetry_compacted_keys_pk', ['device_pk', 'hour'])
    .execute()
  // The newest compacted hour, read by every replica's write path (which datagrams to check).
  await db.schema
    .createIndex('telemetry_compacted_keys_hour_idx')
    .on('telemetry_compacted_keys')
    .column('hour')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('telemetry_compacted_keys').ifExists().execute()
}
