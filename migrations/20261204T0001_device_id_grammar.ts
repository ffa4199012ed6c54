import { type Kysely, sql } from 'kysely'

/**
 * The device-id grammar (src/platform/device-id.ts) in the database: never `.`, `..` or a leading
 * dot. NOT VALID: rows registered before stay (the server reports them at start so an operator
 * deletes them); every new or changed row must match.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table devices add constraint devices_device_id_grammar
    check (device_id ~ '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$') not valid`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table devices drop constraint if exists devices_device_id_grammar`.execute(db)
}
