import { randomUUID } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { type AlertEventBody, type AlertEventKind, toAlert } from './alert-events.ts'
import { selectAlerts } from './repository.ts'

/** One claimed delivery: an event for one target. */
export interface OutboxRow {
  id: number
  event_id: string
  target: string
  attempts: number
  body: AlertEventBody
}

/**
 * Writes one event per alert and target, inside the caller's transaction (the one that changed
 * the alerts), with the alerts as they are now. "updated" events are skipped for an alert that
 * had an event less than `updateEveryS` seconds ago.
 */
export async function enqueueEvents(
  trx: Kysely<Database>,
  alertIds: number[],
  event: AlertEventKind,
  targets: string[],
  updateEveryS: number,
): Promise<number> {
  if (alertIds.length === 0 || targets.length === 0) return 0
  let ids = alertIds
  if (event === 'updated' && updateEveryS > 0) {
    const recent = await trx
      .selectFrom('alert_outbox')
      .select('alert_id')
      .distinct()
      .where('alert_id', 'in', ids)
      .where('created_at', '>', sql<Date>`now() - make_interval(secs => ${updateEveryS})`)
      .execute()
    const skip = new Set(recent.map((r) => Number(r.alert_id)))
    ids = ids.filter((id) => !skip.has(id))
    if (ids.length === 0) return 0
  }
  const rows = await selectAlerts(trx).where('a.id', 'in', ids).execute()
  const occurredAt = new Date().toISOString()
  const values = rows.flatMap((row) => {
    const body: AlertEventBody = {
      event_id: randomUUID(),
      event,
      occurred_at: occurredAt,
      alert: toAlert(row),
    }
    return targets.map((target) => ({
      event_id: body.event_id,
      target,
      alert_id: body.alert.id,
      event,
      payload: JSON.stringify(body),
    }))
  })
  if (values.length > 0) await trx.insertInto('alert_outbox').values(values).execute()
  return values.length
}

/**
 * Claims up to `limit` due deliveries of these targets for `leaseMs`: their next attempt moves
 * past the lease, so no other replica (or later run) takes them while they are being sent; a
 * replica that dies mid-send leaves them to be retried once the lease ends. `for update skip
 * locked` lets replicas claim side by side without waiting on each other. Only the oldest
 * undelivered event of each alert and target is claimable: a receiver sees an alert's events in
 * order (opened before resolved), whatever happened to earlier attempts.
 */
export async function claimDue(
  db: Kysely<Database>,
  targets: string[],
  limit: number,
  leaseMs: number,
): Promise<OutboxRow[]> {
  if (targets.length === 0) return []
  const { rows } = await sql<{
    id: number | string
    event_id: string
    target: string
    attempts: number
    payload: AlertEventBody | string
  }>`
    update alert_outbox set attempts = attempts + 1,
      next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
    where id in (
      select o.id from alert_outbox o
      where o.delivered_at is null and o.next_attempt_at <= now() and o.target = any(${targets}::text[])
        and not exists (
          select 1 from alert_outbox p
          where p.target = o.target and p.alert_id = o.alert_id and p.delivered_at is null and p.id < o.id)
      order by o.id
      limit ${limit}
      for update skip locked)
    returning id, event_id, target, attempts, payload`.execute(db)
  return rows
    .map((r) => ({
      id: Number(r.id),
      event_id: r.event_id,
      target: r.target,
      attempts: r.attempts,
      body: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as AlertEventBody,
    }))
    .sort((a, b) => a.id - b.id)
}

export async function markDelivered(db: Kysely<Database>, ids: number[]): Promise<void> {
  if (ids.length === 0) return
  await db
    .updateTable('alert_outbox')
    .set({ delivered_at: sql`now()`, last_error: null })
    .where('id', 'in', ids)
    .execute()
}

export async function markFailed(db: Kysely<Database>, id: number, retryInMs: number, error: string) {
  await db
    .updateTable('alert_outbox')
    .set({
      next_attempt_at: sql`now() + make_interval(secs => ${retryInMs / 1000})`,
      last_error: error.slice(0, 1000),
    })
    .where('id', '=', id)
    .execute()
}

/** Delivered events older than `days` are history nobody reads: deleted. */
export async function pruneDelivered(db: Kysely<Database>, days: number): Promise<number> {
  const result = await db
    .deleteFrom('alert_outbox')
    .where('delivered_at', '<', sql<Date>`now() - make_interval(days => ${days})`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** Undelivered events per target (metrics, tests). */
export async function pendingCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('alert_outbox')
    .select(['target', (eb) => eb.fn.countAll<number>().as('n')])
    .where('delivered_at', 'is', null)
    .groupBy('target')
    .execute()
  return Object.fromEntries(rows.map((r) => [r.target, Number(r.n)]))
}
