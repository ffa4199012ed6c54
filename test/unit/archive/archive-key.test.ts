import assert from 'node:assert/strict'
import { test } from 'node:test'
import { archiveKey, keyTime, timeKey } from '../../../src/modules/archive/archive-key.ts'

test('an archive key: device, category, UTC day and time, run and counter; its time reads back', () => {
  const at = Date.UTC(2026, 10, 5, 1, 2, 3, 4)
  const key = archiveKey('meter-1', 'telemetry', at, 'a1b2c3', 35)
  assert.equal(key, 'meter-1/telemetry/2026/11/05/010203004-a1b2c3-z.ndjson')
  assert.equal(keyTime(key.split('/').slice(2).join('/')), at)
  assert.equal(timeKey(at), '2026/11/05/010203004')
})
