import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { connectDatabase, migrateToLatest } from '../../../src/platform/db/index.ts'
import { createSchema, realDatabaseUrl, tempDir } from '../../helpers/env.ts'

const dir = tempDir()
let schema: Awaited<ReturnType<typeof createSchema>> | undefined
before(async () => {
  if (realDatabaseUrl) schema = await createSchema(realDatabaseUrl)
})
after(async () => {
  await schema?.drop()
  dir.remove()
})

test('migrations apply on an empty database, are idempotent, and create every table', async () => {
  const { db } = await connectDatabase({
    databaseUrl: schema?.url,
    dataDir: dir.path,
    poolMax: 2,
    inMemory: !schema,
  })
  try {
    const applied = await migrateToLatest(db)
    assert.ok(applied.length >= 1)
    assert.deepEqual(await migrateToLatest(db), [], 'a second run applies nothing')
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = current_schema()`.execute(db)
    const names = tables.rows.map((r) => r.table_name)
    for (const t of [
      'devices',
      'device_configs',
      'device_alerts',
      'device_commands',
      'device_seq_tracking',
      'device_seq_digests',
    ]) {
      assert.ok(names.includes(t), `table ${t}`)
    }
    await assert.rejects(
      sql`insert into devices (device_id, device_name) values ('bad/id', 'x')`.execute(db),
      /check/,
      'the database itself refuses an unsafe device_id',
    )
  } finally {
    await db.destroy()
  }
})

test('embedded PGlite keeps its data under DATA_DIR across restarts', {
  skip: Boolean(realDatabaseUrl),
}, async () => {
  const first = await connectDatabase({ dataDir: dir.path, poolMax: 1 })
  await migrateToLatest(first.db)
  await sql`insert into devices (device_id, device_name) values ('persisted', 'p')`.execute(first.db)
  await first.db.destroy()
  const second = await connectDatabase({ dataDir: dir.path, poolMax: 1 })
  const rows = await second.db.selectFrom('devices').select('device_id').execute()
  await second.db.destroy()
  assert.deepEqual(
    rows.map((r) => r.device_id),
    ['persisted'],
  )
})
