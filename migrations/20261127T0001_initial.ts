import { type Kysely, sql } from 'kysely'

/** The registry: devices, their configuration history, alerts, commands and dedup state. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('devices')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('device_id', 'varchar(64)', (c) =>
      c.notNull().unique().check(sql`device_id ~ '^[A-Za-z0-9_.-]{1,64}$'`),
    )
    .addColumn('device_name', 'varchar(255)', (c) => c.notNull())
    .addColumn('device_type', 'varchar(64)')
    .addColumn('location', 'varchar(255)')
    .addColumn('status', 'varchar(32)', (c) => c.notNull().defaultTo('active'))
    .addColumn('connection_status', 'varchar(16)', (c) =>
      c.notNull().defaultTo('unknown').check(sql`connection_status in ('online', 'offline', 'unknown')`),
    )
    .addColumn('last_seen', 'timestamptz')
    .addColumn('fw_version', 'varchar(64)')
    .addColumn('metadata', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('config', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createIndex('devices_created_at_idx')
    .on('devices')
    .columns(['created_at desc', 'id desc'])
    .execute()
  await db.schema.createIndex('devices_status_idx').on('devices').column('status').execute()
  await db.schema.createIndex('devices_type_idx').on('devices').column('device_type').execute()
  await db.schema.createIndex('devices_connection_idx').on('devices').column('connection_status').execute()

  await db.schema
    .createTable('device_configs')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('config', 'jsonb', (c) => c.notNull())
    .addColumn('source', 'varchar(32)', (c) => c.notNull())
    .addColumn('cmd_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createIndex('device_configs_device_idx')
    .on('device_configs')
    .columns(['device_pk', 'id'])
    .execute()

  await db.schema
    .createTable('device_alerts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('alert_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('severity', 'varchar(16)', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb')
    .addColumn('acknowledged', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('acknowledged_at', 'timestamptz')
    .addColumn('occurrences', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createIndex('device_alerts_device_idx')
    .on('device_alerts')
    .columns(['device_pk', 'id'])
    .execute()
  await db.schema.createIndex('device_alerts_created_idx').on('device_alerts').column('id').execute()
  // At most one open (unresolved, unacknowledged) alert per device and type: repeats bump a counter.
  await db.schema
    .createIndex('device_alerts_open_uq')
    .on('device_alerts')
    .columns(['device_pk', 'alert_type'])
    .unique()
    .where(sql<boolean>`acknowledged = false and resolved_at is null`)
    .execute()

  await db.schema
    .createTable('device_commands')
    .addColumn('cmd_id', 'uuid', (c) => c.primaryKey())
    .addColumn('device_pk', 'integer', (c) => c.notNull().references('devices.id').onDelete('cascade'))
    .addColumn('cmd', 'varchar(32)', (c) => c.notNull())
    .addColumn('params', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('status', 'varchar(16)', (c) => c.notNull().defaultTo('pending'))
    .addColumn('detail', 'text')
    .addColumn('ota', 'jsonb')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('sent_at', 'timestamptz')
    .addColumn('acked_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema
    .createIndex('device_commands_device_idx')
    .on('device_commands')
    .columns(['device_pk', 'created_at'])
    .execute()
  await db.schema.createIndex('device_commands_status_idx').on('device_commands').column('status').execute()

  await db.schema
    .createTable('device_seq_tracking')
    .addColumn('device_pk', 'integer', (c) => c.primaryKey().references('devices.id').onDelete('cascade'))
    .addColumn('state', 'jsonb', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'device_seq_tracking',
    'device_commands',
    'device_alerts',
    'device_configs',
    'devices',
  ]) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}
