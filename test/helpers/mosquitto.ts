import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './env.ts'

const projectConfig = fileURLToPath(new URL('../../deploy/mosquitto/mosquitto.conf', import.meta.url))

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface Mosquitto {
  url: string
  port: number
  process: ChildProcess
  stop(): Promise<void>
}

/**
 * Runs a Mosquitto of the test's own with the project's config (deploy/mosquitto/mosquitto.conf):
 * on a free port, with its persistence in a temporary directory.
 */
export async function startMosquitto(port?: number, dataDir?: string): Promise<Mosquitto> {
  // A directory of its own unless the caller keeps one across restarts (then the caller removes it).
  const own = dataDir ? undefined : tempDir('mosquitto-')
  const dir = dataDir ?? (own?.path as string)
  const chosen = port ?? (await freePort())
  const config = readFileSync(projectConfig, 'utf8')
    .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`)
    .replace(/^listener 1883.*$/m, `listener ${chosen} 127.0.0.1`)
    .replace(/^log_dest .*$/m, 'log_dest stderr')
  const file = join(dir, 'mosquitto.conf')
  // As root Mosquitto switches to user "mosquitto", which cannot write the temporary directory.
  writeFileSync(file, process.getuid?.() === 0 ? `user root\n${config}` : config)
  const child = spawn('mosquitto', ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] })
  child.stderr?.resume()
  await waitForPort(chosen, 10000)
  return {
    url: `mqtt://127.0.0.1:${chosen}`,
    port: chosen,
    process: child,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
      own?.remove()
    },
  }
}
