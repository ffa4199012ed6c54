import { ConfigError, loadConfig } from './config.ts'
import { checkPorts } from './preflight.ts'

const fail = (what: string, lines: string[], code: number): never => {
  process.stderr.write(
    `iot-meter: ${what} (after ${Math.round(process.uptime() * 1000)} ms):\n${lines.map((l) => `  - ${l}`).join('\n')}\n`,
  )
  process.exit(code)
}

/**
 * The process: read the configuration and check the ports (both before the database is touched, so
 * a mistake fails in milliseconds with its fix), build, listen, print the banner, and close cleanly
 * on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig()
  } catch (error) {
    if (error instanceof ConfigError) return fail('invalid configuration', error.problems, 2)
    throw error
  }
  const busy = await checkPorts(config)
  if (busy.length > 0) return fail('cannot start', busy, 2)
  // Loaded only now: the application's modules take seconds to load, the checks above milliseconds.
  const [{ default: closeWithGrace }, { buildServer }, { bannerText, startupFacts }, { logFormat }] =
    await Promise.all([
      import('close-with-grace'),
      import('./server.ts'),
      import('./banner.ts'),
      import('./platform/logging.ts'),
    ])
  const server = await buildServer({ config })
  // A second signal while closing exits at once (close-with-grace's own behaviour).
  closeWithGrace({ delay: config.SHUTDOWN_TIMEOUT_MS, logger: server.log }, async ({ signal, err }) => {
    if (err) server.log.error({ err }, 'closing after an uncaught error')
    else server.log.info({ signal }, 'closing')
    await server.close()
  })
  const address = await server.listen({ port: config.PORT, host: config.HOST })
  const facts = startupFacts(server, config, address, server.bootstrapToken ?? undefined)
  if (logFormat(config.LOG_FORMAT) === 'pretty') {
    process.stdout.write(`${bannerText(facts)}\n`)
  } else {
    const { bootstrap_token, ...rest } = facts
    server.log.info(rest, 'ready')
    if (bootstrap_token) {
      server.log.warn(
        `no admin token existed: created API token "bootstrap-admin" (role admin), shown only this once: ${bootstrap_token}` +
          ' — store it, create named tokens with POST /api/tokens, then revoke this one',
      )
    }
  }
}

main().catch((error) => {
  fail('failed to start', [error instanceof Error ? error.message : String(error)], 1)
})
