import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { confirmGaps } from '../../../src/modules/ingest/gap-claims.ts'
import type { SeqRun } from '../../../src/modules/telemetry/index.ts'
import { build, type TestApp } from '../../helpers/build.ts'
import { registerDevice } from '../../helpers/device.ts'
import { uniqueName } from '../../helpers/env.ts'

// Issue 15: gap claims ask the telemetry store for stored seqs (PostgreSQL or InfluxDB alike),
// never the PostgreSQL table behind its back.
describe('gap claims ask the telemetry store they are given', () => {
  let t: TestApp
  before(async () => {
    t = await build()
  })
  after(() => t.close())

  test('seqs the store holds are taken out of the hole; the rest is declared once', async () => {
    const pk = (await registerDevice(t, uniqueName('claims'))).id
    const asked: SeqRun[] = []
    const store = {
      storedSeqs: async (devicePk: number, run: SeqRun) => {
        assert.equal(devicePk, pk)
        asked.push(run)
        return new Set([2, 3])
      },
    }
    const now = Date.now()
    const hole = { from: 1, to: 5, fromTs: now - 10_000, toTs: now, since: now }
    const declared = await confirmGaps(t.app.db, pk, [hole], 'me', store)
    assert.deepEqual(asked, [{ from: 1, to: 5, fromTs: now - 10_000, toTs: now }])
    assert.deepEqual(
      declared.map((r) => [r.from, r.to]),
      [
        [1, 1],
        [4, 5],
      ],
    )
    // Another replica finds the pieces claimed, and declares nothing.
    assert.deepEqual(await confirmGaps(t.app.db, pk, [hole], 'other', store), [])
  })

  test('a hole the store holds whole is no gap', async () => {
    const pk = (await registerDevice(t, uniqueName('claims'))).id
    const now = Date.now()
    const hole = { from: 7, to: 8, fromTs: now - 10_000, toTs: now, since: now }
    const store = { storedSeqs: async () => new Set([7, 8]) }
    assert.deepEqual(await confirmGaps(t.app.db, pk, [hole], 'me', store), [])
  })
})
