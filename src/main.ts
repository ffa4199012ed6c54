import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.ts'
import { buildServer } from './server.ts'

/** The process: read the configuration, build, listen, and close cleanly on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`iot-meter: ${error.message}\n`)
      process.exit(2)
    }
    throw error
  }
  const server = await buildServer({ config })
  // A second signal while closing exits at once (close-with-grace's own behaviour).
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'closing after an uncaught error')
    else server.log.info({ signal }, 'closing')
    await server.close()
  })
  await server.listen({ port: config.PORT, host: config.HOST })
}

main().catch((error) => {
  process.stderr.write(
    `iot-meter: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  )
  process.exit(1)
})
