import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './env.ts'
import { freePort } from './mosquitto.ts'

/** Debian's prometheus-alertmanager (.ci/services.sh installs it). */
export const alertmanagerBinary = ['/usr/bin/prometheus-alertmanager', '/usr/bin/alertmanager'].find((p) =>
  existsSync(p),
)

export interface Alertmanager {
  url: string
  port: number
  /** Starts the process (again) on its port, with the same storage. */
  start(): Promise<void>
  stop(): Promise<void>
  remove(): Promise<void>
}

/**
 * A real Alertmanager of the test's own: a free port, a temporary config (one receiver that
 * notifies nobody) and storage path, clustering off. Not started until `start()`.
 */
export async function prepareAlertmanager(): Promise<Alertmanager> {
  if (!alertmanagerBinary) throw new Error('prometheus-alertmanager is not installed')
  const dir = tempDir('alertmanager-')
  const port = await freePort()
  const config = join(dir.path, 'alertmanager.yml')
  writeFileSync(config, 'route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n')
  let child: ChildProcess | undefined
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }
  return {
    url,
    port,
    async start() {
      child = spawn(
        alertmanagerBinary as string,
        [
          `--config.file=${config}`,
          `--storage.path=${join(dir.path, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--cluster.listen-address=',
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      )
      const deadline = Date.now() + 15_000
      for (;;) {
        const ready = await fetch(`${url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        )
        if (ready) return
        if (child.exitCode !== null) throw new Error(`alertmanager exited with ${child.exitCode}`)
        if (Date.now() > deadline) throw new Error('alertmanager did not become ready')
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    stop,
    async remove() {
      await stop()
      dir.remove()
    },
  }
}
