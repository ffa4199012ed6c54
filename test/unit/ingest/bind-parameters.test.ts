import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { sql } from 'kysely'
import { DevicesService } from '../../../src/modules/devices/index.ts'
import { confirmGaps } from '../../../src/modules/ingest/gap-claims.ts'
import { loadSeqStates, saveSeqStates } from '../../../src/modules/ingest/seq-state-repository.ts'
import { registerDevice, suiteWithDevice } from '../../helpers/device.ts'
import { uniqueName } from '../../helpers/env.ts'

// Issue 16 rows 9 and 10: the ingest's multi-row statements take any number of rows (arrays, not
// one bind parameter per value), and a device deleted while its hole expires is no error.
const OVER = 70_000

describe('ingest statements past 65,535 bind parameters', () => {
  const suite = suiteWithDevice('bind')

  test('seq states, device lookups and activity with 70,000 rows', async () => {
    const pks = Array.from({ length: OVER }, (_, i) => (i === 0 ? suite.pk : 1_000_000 + i))
    const state = { high: 5, bits: '', missing: [] }
    // A digest block per device too: the blocks of devices that do not exist are skipped as well.
    const blocks = [{ boot: 0 as const, block: 0, base64: Buffer.alloc(8, 7).toString('base64') }]
    await saveSeqStates(
      suite.t.app.db,
      pks.map((p) => ({ pk: p, state: state as never, blocks })),
    )
    const loaded = await loadSeqStates(suite.t.app.db, pks)
    assert.deepEqual([...loaded.keys()], [suite.pk])
    assert.deepEqual(loaded.get(suite.pk)?.blocks, blocks)
    const devices = new DevicesService(suite.t.app.db)
    assert.equal((await devices.pksOf(pks.map((p) => `nobody-${p}`))).size, 0)
    assert.equal((await devices.configsByPk(pks)).size, 1)
    const changed = await devices.recordActivity(
      pks
        .slice(0, OVER / 4)
        .map((p) => ({ devicePk: p, lastSeen: new Date(), connection: 'online' as const })),
    )
    assert.deepEqual(
      changed.map((c) => c.devicePk),
      [suite.pk],
    )
  })

  test('row 10: the gaps of a deleted device are not claimed (no foreign-key error)', async () => {
    const gone = (await registerDevice(suite.t, uniqueName('gone'))).id
    await sql`delete from devices where id = ${gone}::int`.execute(suite.t.app.db)
    const range = { from: 1, to: 3, fromTs: Date.now() - 10_000, toTs: Date.now(), since: Date.now() }
    // The device never stored anything: the store holds no seq of it.
    const none = { storedSeqsMany: async (asks: readonly unknown[]) => asks.map(() => new Set<number>()) }
    assert.deepEqual(await confirmGaps(suite.t.app.db, gone, [range], 'me', none), [])
  })
})
