#!/usr/bin/env node
// Offline supply-chain check of package-lock.json (CI runs it before `npm ci --ignore-scripts`):
// every package pinned by an sha512 integrity hash and fetched from the npm registry, and install
// scripts only from the allow-list below. `npm ci` then verifies each tarball against its hash.
// `--allowed` prints the allow-listed packages that have install scripts (for `npm rebuild`).
// Online, also run `npm audit signatures` (registry signatures) and `npm audit` (advisories).
import { readFileSync } from 'node:fs'

/** Packages whose install scripts may run, and why. */
const INSTALL_SCRIPTS_ALLOWED = {
  esbuild: 'installs its platform binary (tsx compiles TypeScript with it)',
}
const REGISTRY = 'https://registry.npmjs.org/'

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'))
const problems = []
const scripted = []
if (lock.lockfileVersion < 2) problems.push(`lockfileVersion ${lock.lockfileVersion}: need 2 or 3`)
for (const [path, entry] of Object.entries(lock.packages ?? {})) {
  if (path === '' || entry.link) continue
  const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)
  if (!entry.integrity?.startsWith('sha512-')) problems.push(`${path}: no sha512 integrity`)
  // npm leaves `resolved` out for the default registry; any other source is named and refused.
  if (entry.resolved && !entry.resolved.startsWith(REGISTRY))
    problems.push(`${path}: resolved outside ${REGISTRY}: ${entry.resolved}`)
  if (entry.hasInstallScript) {
    if (name in INSTALL_SCRIPTS_ALLOWED) scripted.push(name)
    else problems.push(`${path}: has an install script and is not in INSTALL_SCRIPTS_ALLOWED`)
  }
}
if (process.argv.includes('--allowed')) {
  console.log([...new Set(scripted)].join(' '))
} else if (problems.length > 0) {
  console.error(`supply chain: ${problems.length} problem(s)\n${problems.join('\n')}`)
  process.exit(1)
} else {
  const n = Object.keys(lock.packages).length - 1
  console.log(
    `supply chain: ${n} locked packages, all sha512 from ${REGISTRY}; install scripts: ${scripted.join(', ') || 'none'}`,
  )
}
