import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Kysely } from 'kysely'
import { ArchiveBuffer } from '../../../src/modules/archive/archive-buffer.ts'
import { FsArchiveStore, RawArchive } from '../../../src/modules/archive/index.ts'
import type { Database } from '../../../src/platform/db/index.ts'
import { tempDir } from '../../helpers/env.ts'

// Issue 16 row 2: one line under a key no store takes (a legacy device id `..`) failed every
// checkpoint, so the journal never settled and the whole fleet stalled.
test('a checkpoint with a line under an invalid key writes the others and does not fail', async () => {
  const dir = tempDir()
  try {
    const dropped: string[] = []
    const archive = new RawArchive(new FsArchiveStore(dir.path), {} as Kysely<Database>, 0)
    const buffer = new ArchiveBuffer(archive, 'run', (id) => dropped.push(id))
    buffer.add('..', 'telemetry', [Buffer.from('{}')], Date.now())
    buffer.add('fine', 'telemetry', [Buffer.from('{}')], Date.now())
    await buffer.take().write()
    assert.deepEqual(dropped, ['..'])
    assert.equal(buffer.buffered, 0)
    assert.equal((await new FsArchiveStore(dir.path).list('fine/', 10)).length, 1)
  } finally {
    dir.remove()
  }
})
