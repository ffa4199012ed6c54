import { type Kysely, sql } from 'kysely'

/**
 * Per-device MQTT secrets (module device-auth): the embedded broker's password of each device.
 * Only the SHA-256 of the secret is stored; the secret itself (32 random bytes) is shown once.
 * A device has at most one valid secret: rotation replaces the hash, which revokes the old one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('device_secrets')
    .addColumn('device_pk', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('secret_hash', 'char(64)', (c) => c.notNull().check(sql`secret_hash ~ '^[0-9a-f]{64}$'`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('rotated_at', 'timestamptz')
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('device_secrets').ifExists().execute()
}
