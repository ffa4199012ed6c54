import { type Kysely, sql } from 'kysely'

/** Per-device HMAC keys that sign the commands the server publishes (PROTOCOL.md, security). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('device_keys')
    .addColumn('device_pk', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('command_key', 'char(64)', (c) => c.notNull().check(sql`command_key ~ '^[0-9a-f]{64}$'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('rotated_at', 'timestamptz')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('device_keys').ifExists().execute()
}
