import type { Kysely } from 'kysely'
import { sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'

type Db = Kysely<Database>

/** The stored hash of the device's secret, by device_id (undefined: unknown device or no secret). */
export async function findHash(db: Db, deviceId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('device_secrets')
    .innerJoin('devices', 'devices.id', 'device_secrets.device_pk')
    .select('device_secrets.secret_hash')
    .where('devices.device_id', '=', deviceId)
    .executeTakeFirst()
  return row?.secret_hash
}

/** Stores a first secret hash; keeps an existing one. */
export async function insertHashIfMissing(db: Db, devicePk: number, secretHash: string): Promise<void> {
  await db
    .insertInto('device_secrets')
    .values({ device_pk: devicePk, secret_hash: secretHash })
    .onConflict((oc) => oc.column('device_pk').doNothing())
    .execute()
}

/** Replaces the device's secret hash (the old secret stops working) and stamps rotated_at. */
export async function replaceHash(db: Db, devicePk: number, secretHash: string): Promise<void> {
  await db
    .insertInto('device_secrets')
    .values({ device_pk: devicePk, secret_hash: secretHash, rotated_at: sql`now()` })
    .onConflict((oc) =>
      oc.column('device_pk').doUpdateSet({ secret_hash: secretHash, rotated_at: sql`now()` }),
    )
    .execute()
}

/** Removes the device's secret: it can no longer connect until a rotation issues a new one. */
export async function deleteHash(db: Db, devicePk: number): Promise<boolean> {
  const result = await db.deleteFrom('device_secrets').where('device_pk', '=', devicePk).executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}
