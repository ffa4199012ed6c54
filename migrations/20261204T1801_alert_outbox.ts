import { type Kysely, sql } from 'kysely'

/**
 * The alert outbox (module alerts): one row per alert event (opened, updated, acknowledged,
 * resolved) and delivery target (a webhook URL, or Alertmanager), written in the transaction that
 * changes the alert. A delivery worker sends due rows and marks them delivered; a failure pushes
 * `next_attempt_at` back (exponential backoff). The event id is shared by every target of one
 * event: receivers dedupe on it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('alert_outbox')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('event_id', 'uuid', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('alert_id', 'bigint', (c) => c.notNull())
    .addColumn('event', 'varchar(16)', (c) =>
      c.notNull().check(sql`event in ('opened', 'updated', 'acknowledged', 'resolved')`),
    )
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('alert_outbox_event_target_uq', ['event_id', 'target'])
    .execute()
  // The worker's queue: undelivered rows only, in order per target and alert.
  await db.schema
    .createIndex('alert_outbox_pending_idx')
    .on('alert_outbox')
    .columns(['target', 'alert_id', 'id'])
    .where(sql<boolean>`delivered_at is null`)
    .execute()
  // The last event of an alert (rate of "updated" events).
  await db.schema
    .createIndex('alert_outbox_alert_idx')
    .on('alert_outbox')
    .columns(['alert_id', 'id'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('alert_outbox').ifExists().execute()
}
