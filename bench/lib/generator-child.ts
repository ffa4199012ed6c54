/**
 * One load-generator process of `bench:ingest --generators K` (see generators.ts): it connects its
 * share of the meters and publishes when told, over the IPC channel of its parent.
 */
import { connectPublishers, type Publisher, publishAll, publishPaced } from './load.ts'

export type ToChild =
  | { cmd: 'connect'; url: string; ids: string[]; prefix: string; kind: 'raw' | 'mqttjs' }
  | {
      cmd: 'publish'
      perDevice: number
      window: number
      rate?: number
      sampleBase: number
      firstSeq: number
    }
  | { cmd: 'end' }

export type FromChild = { ok: true; sent?: number; rate?: number } | { ok: false; error: string }

let clients: Publisher[] = []
let ids: string[] = []
const reply = (m: FromChild) => process.send?.(m)

process.on('message', async (m: ToChild) => {
  try {
    if (m.cmd === 'connect') {
      ids = m.ids
      clients = await connectPublishers(m.url, ids, m.prefix, m.kind)
      reply({ ok: true })
    } else if (m.cmd === 'publish') {
      if (m.rate) {
        const rate = await publishPaced(
          clients,
          ids,
          m.perDevice,
          m.rate,
          m.sampleBase,
          undefined,
          m.firstSeq,
        )
        reply({ ok: true, sent: ids.length * m.perDevice, rate })
      } else {
        const sent = await publishAll(
          clients,
          ids,
          m.perDevice,
          m.window,
          m.sampleBase,
          undefined,
          m.firstSeq,
        )
        reply({ ok: true, sent })
      }
    } else {
      await Promise.all(clients.map((c) => c.endAsync()))
      reply({ ok: true })
      process.disconnect()
    }
  } catch (error) {
    reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  }
})
