import { type ChildProcess, fork } from 'node:child_process'
import type { FromChild, ToChild } from './generator-child.ts'
import { connectPublishers, cpuSeconds, type Publisher, publishAll, publishPaced } from './load.ts'

export interface PublishOptions {
  perDevice: number
  window: number
  /** Paced total rate (msg/s) over all generators; unset = as fast as the broker takes them. */
  rate?: number
  sampleBase: number
  firstSeq: number
  onSent?: (sent: number) => void
}

/** The meters' load: in this process, or spread over K child processes (`--generators K`). */
export interface Load {
  /** Publishes `perDevice` datagrams per meter; resolves with the count and, paced, the achieved rate. */
  publish(o: PublishOptions): Promise<{ sent: number; rate?: number }>
  end(): Promise<void>
  /** CPU seconds the load has used so far (this process included: it also polls the server). */
  cpuSeconds(): Promise<number>
}

const ownCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/**
 * Connects the meters `ids` to `url` in `processes` processes (1 = this one). One Node process
 * tops out near 10,000 QoS 2 msg/s on its own: past that the generator, not the server, is measured.
 */
export async function startLoad(
  url: string,
  ids: string[],
  prefix: string,
  kind: 'raw' | 'mqttjs',
  processes: number,
): Promise<Load> {
  if (processes <= 1) {
    const clients: Publisher[] = await connectPublishers(url, ids, prefix, kind)
    return {
      publish: async (o) => {
        if (o.rate) {
          const rate = await publishPaced(
            clients,
            ids,
            o.perDevice,
            o.rate,
            o.sampleBase,
            o.onSent,
            o.firstSeq,
          )
          return { sent: ids.length * o.perDevice, rate }
        }
        const sent = await publishAll(clients, ids, o.perDevice, o.window, o.sampleBase, o.onSent, o.firstSeq)
        return { sent }
      },
      end: async () => {
        await Promise.all(clients.map((c) => c.endAsync()))
      },
      cpuSeconds: async () => ownCpu(),
    }
  }
  const children: ChildProcess[] = []
  const shares: string[][] = []
  const size = Math.ceil(ids.length / processes)
  for (let i = 0; i < ids.length; i += size) shares.push(ids.slice(i, i + size))
  for (let i = 0; i < shares.length; i++) {
    children.push(
      fork(new URL('./generator-child.ts', import.meta.url).pathname, [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    )
  }
  const ask = (child: ChildProcess, m: ToChild) =>
    new Promise<FromChild>((resolve, reject) => {
      child.once('message', (r: FromChild) => (r.ok ? resolve(r) : reject(new Error(r.error))))
      child.once('exit', () => reject(new Error('generator exited')))
      child.send(m)
    })
  await Promise.all(
    children.map((c, i) => ask(c, { cmd: 'connect', url, ids: shares[i] as string[], prefix, kind })),
  )
  return {
    publish: async (o) => {
      const { onSent: _, ...rest } = o
      const replies = await Promise.all(
        children.map((c, i) =>
          ask(c, {
            cmd: 'publish',
            ...rest,
            // Each paced at its share of the rate, in proportion to its meters.
            rate: o.rate ? (o.rate * (shares[i] as string[]).length) / ids.length : undefined,
          }),
        ),
      )
      let sent = 0
      let rate = 0
      for (const r of replies) {
        if (!r.ok) continue
        sent += r.sent ?? 0
        rate += r.rate ?? 0
      }
      return { sent, ...(o.rate ? { rate } : {}) }
    },
    end: async () => {
      await Promise.all(children.map((c) => ask(c, { cmd: 'end' }).catch(() => undefined)))
      for (const c of children) if (c.exitCode === null) c.kill()
    },
    cpuSeconds: async () => {
      let total = ownCpu()
      for (const c of children) total += await cpuSeconds(c.pid as number).catch(() => 0)
      return total
    },
  }
}
