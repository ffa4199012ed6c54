import { type Kysely, type Selectable, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import type { DeviceAlertsTable } from '../../platform/db/schema.ts'
import type { AlertListQuery } from './schemas.ts'

export type AlertRow = Selectable<DeviceAlertsTable> & { device_id: string }

export interface NewAlert {
  device_pk: number
  alert_type: string
  severity: string
  message: string
  details?: Record<string, unknown> | null
}

export const selectAlerts = (db: Kysely<Database>) =>
  db
    .selectFrom('device_alerts as a')
    .innerJoin('devices as d', 'd.id', 'a.device_pk')
    .selectAll('a')
    .select('d.device_id')

export function listAlerts(db: Kysely<Database>, query: Partial<AlertListQuery> & { device_pk?: number }) {
  let q = selectAlerts(db)
  if (query.device_pk !== undefined) q = q.where('a.device_pk', '=', query.device_pk)
  if (query.device_id) q = q.where('d.device_id', '=', query.device_id)
  if (query.alert_type) q = q.where('a.alert_type', '=', query.alert_type)
  if (query.severity) q = q.where('a.severity', '=', query.severity)
  if (query.acknowledged !== undefined) q = q.where('a.acknowledged', '=', query.acknowledged)
  if (query.resolved !== undefined) q = q.where('a.resolved_at', query.resolved ? 'is not' : 'is', null)
  return q
    .orderBy('a.id', 'desc')
    .limit(query.limit ?? 1000)
    .offset(query.offset ?? 0)
    .execute()
}

export function findAlert(db: Kysely<Database>, id: number) {
  return selectAlerts(db).where('a.id', '=', id).executeTakeFirst()
}

/**
 * Inserts the alert, or — when one of the same device and type is still open — counts the repeat
 * on the open one (occurrences, last_seen_at, latest message) instead of adding noise.
 */
export function upsertOpenAlert(db: Kysely<Database>, alert: NewAlert) {
  return (
    db
      .insertInto('device_alerts')
      .values({
        ...alert,
        details: alert.details ? JSON.stringify(alert.details) : null,
        last_seen_at: sql`now()`,
      })
      .onConflict((oc) =>
        oc
          .columns(['device_pk', 'alert_type'])
          .where('acknowledged', '=', false)
          .where('resolved_at', 'is', null)
          .doUpdateSet({
            occurrences: sql`device_alerts.occurrences + 1`,
            last_seen_at: sql`now()`,
            message: sql`excluded.message`,
            severity: sql`excluded.severity`,
            details: sql`excluded.details`,
          }),
      )
      // xmax = 0: this statement inserted the row (an "opened" event, not an "updated" one).
      .returning(['id', sql<boolean>`xmax = 0`.as('inserted')])
      .executeTakeFirstOrThrow()
  )
}

/** Acknowledges the alert if it was not yet; undefined when it is missing or was acknowledged already. */
export function acknowledgeAlert(db: Kysely<Database>, id: number) {
  return db
    .updateTable('device_alerts')
    .set({ acknowledged: true, acknowledged_at: sql`coalesce(acknowledged_at, now())` })
    .where('id', '=', id)
    .where('acknowledged', '=', false)
    .returning('id')
    .executeTakeFirst()
}

/** Marks the open alert of this device and type resolved (the condition went away). */
export function resolveOpenAlert(db: Kysely<Database>, devicePk: number, alertType: string, note?: string) {
  const details = note
    ? {
        details: sql<string>`coalesce(details, '{}'::jsonb) || jsonb_build_object('resolution', ${note}::text)`,
      }
    : {}
  return db
    .updateTable('device_alerts')
    .set({ resolved_at: sql`now()`, ...details })
    .where('device_pk', '=', devicePk)
    .where('alert_type', '=', alertType)
    .where('resolved_at', 'is', null)
    .where('acknowledged', '=', false)
    .returning('id')
    .execute()
}

export async function countOpenBySeverity(db: Kysely<Database>) {
  return db
    .selectFrom('device_alerts')
    .select(['severity', (eb) => eb.fn.countAll<number>().as('count')])
    .where('acknowledged', '=', false)
    .groupBy('severity')
    .execute()
}
