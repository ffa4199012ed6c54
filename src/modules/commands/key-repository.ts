import type { Kysely, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'

type Db = Kysely<Database> | Transaction<Database>

export function findKey(db: Db, devicePk: number) {
  return db.selectFrom('device_keys').selectAll().where('device_pk', '=', devicePk).executeTakeFirst()
}

/** Stores a first key for the device; keeps the existing one when it has a key already. */
export async function insertKeyIfMissing(db: Db, devicePk: number, commandKey: string) {
  await db
    .insertInto('device_keys')
    .values({ device_pk: devicePk, command_key: commandKey })
    .onConflict((oc) => oc.column('device_pk').doNothing())
    .execute()
}

/** Replaces the device's key (or stores its first one) and stamps rotated_at. */
export function replaceKey(db: Db, devicePk: number, commandKey: string) {
  return db
    .insertInto('device_keys')
    .values({ device_pk: devicePk, command_key: commandKey, rotated_at: sql`now()` })
    .onConflict((oc) =>
      oc.column('device_pk').doUpdateSet({ command_key: commandKey, rotated_at: sql`now()` }),
    )
    .returningAll()
    .executeTakeFirstOrThrow()
}
