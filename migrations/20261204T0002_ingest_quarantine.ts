import { type Kysely, sql } from 'kysely'

/**
 * Messages the ingest could not store for reasons of their own (a poison record: its device, its
 * key, its payload), kept here instead of blocking the fleet. No foreign key: a quarantined
 * message outlives the deletion of its device.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ingest_quarantine')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('quarantined_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('payload', 'bytea', (c) => c.notNull())
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('error', 'text', (c) => c.notNull())
    .addColumn('replica', 'text', (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('ingest_quarantine_device_idx')
    .on('ingest_quarantine')
    .columns(['device_id', 'quarantined_at'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ingest_quarantine').ifExists().execute()
}
