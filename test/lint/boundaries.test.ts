import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cyclesOf, filesUnder, importsOf } from '../helpers/import-graph.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const src = join(root, 'src')

/** Is `path` inside the folder `dir`? */
const isUnder = (path: string, dir: string) => !relative(dir, path).startsWith('..')

const moduleOf = (path: string): string | undefined => {
  const rel = relative(join(src, 'modules'), path)
  return rel.startsWith('..') ? undefined : rel.split(sep)[0]
}

/** A unit test under test/unit/<module>/ may open its own module's internals (STYLE.md). */
const unitTestModuleOf = (path: string): string | undefined => {
  const rel = relative(join(root, 'test', 'unit'), path)
  return rel.startsWith('..') ? undefined : rel.split(sep)[0]
}

type Source = { file: string; text: string }

/** Every reach into a module from outside it that does not go through its index.ts. */
function doorViolations(files: Source[]): string[] {
  const violations: string[] = []
  for (const { file, text } of files) {
    const targets = importsOf(file, text)
    for (const target of targets) {
      const targetModule = moduleOf(target)
      if (!targetModule || targetModule === moduleOf(file) || targetModule === unitTestModuleOf(file))
        continue
      if (target !== join(src, 'modules', targetModule, 'index.ts')) {
        violations.push(`${relative(root, file)} imports ${relative(root, target)}`)
      }
    }
    if (isUnder(file, join(src, 'platform'))) {
      for (const target of targets) {
        if (moduleOf(target))
          violations.push(`platform file ${relative(root, file)} imports module ${relative(root, target)}`)
      }
    }
  }
  return violations
}

/**
 * The simulator speaks MQTT only: of src it may import its own files, src/platform/mqtt and the wire
 * protocol (src/protocol, which imports nothing else), nothing else.
 */
function simulatorViolations(files: Source[]): string[] {
  const simulator = join(src, 'modules', 'simulator')
  return files
    .filter(({ file }) => isUnder(file, simulator))
    .flatMap(({ file, text }) =>
      importsOf(file, text)
        .filter(
          (t) =>
            !isUnder(t, simulator) && !isUnder(t, join(src, 'platform', 'mqtt')) && !isUnder(t, protocol),
        )
        .map((t) => `simulator file ${relative(root, file)} imports ${relative(root, t)}`),
    )
}

const protocol = join(src, 'protocol')

/** The wire protocol is the lowest layer of src: it imports only its own files (and packages). */
function protocolViolations(files: Source[]): string[] {
  return files
    .filter(({ file }) => isUnder(file, protocol))
    .flatMap(({ file, text }) =>
      importsOf(file, text)
        .filter((t) => !isUnder(t, protocol))
        .map((t) => `protocol file ${relative(root, file)} imports ${relative(root, t)}`),
    )
}

/** Modules declare the slice of configuration they read; only entry-level code imports src/config. */
function configViolations(files: Source[]): string[] {
  const isConfig = (t: string) => t === join(src, 'config.ts') || isUnder(t, join(src, 'config'))
  return files
    .filter(({ file }) => moduleOf(file))
    .flatMap(({ file, text }) =>
      importsOf(file, text)
        .filter(isConfig)
        .map((t) => `module file ${relative(root, file)} imports ${relative(root, t)}`),
    )
}

const read = (dirs: string[]): Source[] =>
  dirs.flatMap((dir) => filesUnder(dir).map((file) => ({ file, text: readFileSync(file, 'utf8') })))

test('modules are entered only through their index.ts, and platform never imports a module', () => {
  const files = read([src, join(root, 'test'), join(root, 'bench')])
  assert.ok(files.length > 10)
  assert.deepEqual(doorViolations(files), [])
})

test('the simulator imports nothing of src but its own files and src/platform/mqtt', () => {
  const files = read([src])
  assert.ok(files.some(({ file }) => moduleOf(file) === 'simulator'))
  assert.deepEqual(simulatorViolations(files), [])
})

test('src/protocol imports nothing of src but its own files', () => {
  const files = read([src])
  assert.ok(files.some(({ file }) => isUnder(file, protocol)))
  assert.deepEqual(protocolViolations(files), [])
})

test('no module imports src/config (it is handed the slice it declares)', () => {
  assert.deepEqual(configViolations(read([src])), [])
})

test('the import graph of src has no cycles', (t) => {
  const files = read([src])
  const graph = new Map(files.map(({ file, text }) => [file, [...new Set(importsOf(file, text))]]))
  const edges = [...graph.values()].reduce((n, targets) => n + targets.filter((x) => graph.has(x)).length, 0)
  t.diagnostic(`src import graph: ${graph.size} files, ${edges} edges`)
  assert.ok(edges > graph.size / 2)
  assert.deepEqual(
    cyclesOf(graph).map((cycle) => cycle.map((f) => relative(root, f))),
    [],
  )
})

const text = (spec: string) => `import { x } from '${spec}'\n`
const inAlerts = join(src, 'modules', 'alerts', 'probe.ts')

test('the door check reports reaches past index.ts, and allows a module its own files', () => {
  const inPlatform = join(src, 'platform', 'probe.ts')
  assert.equal(doorViolations([{ file: inAlerts, text: text('../devices/service.ts') }]).length, 1)
  assert.equal(doorViolations([{ file: inAlerts, text: text('../devices/index.ts') }]).length, 0)
  assert.equal(doorViolations([{ file: inAlerts, text: text('./repository.ts') }]).length, 0)
  assert.equal(doorViolations([{ file: inPlatform, text: text('../modules/devices/index.ts') }]).length, 1)
  assert.equal(doorViolations([{ file: inPlatform, text: text('../protocol/device-id.ts') }]).length, 0)
  const unitOfIngest = join(root, 'test', 'unit', 'ingest', 'probe.test.ts')
  assert.equal(
    doorViolations([{ file: unitOfIngest, text: text('../../../src/modules/ingest/journal.ts') }]).length,
    0,
  )
  assert.equal(
    doorViolations([{ file: unitOfIngest, text: text('../../../src/modules/devices/service.ts') }]).length,
    1,
  )
})

test('the door check also sees side-effect imports, export * and export … from', () => {
  const reaches = [
    "import '../devices/service.ts'\n",
    "import type { Device } from '../devices/schemas.ts'\n",
    "export * from '../devices/service.ts'\n",
    "export { DevicesService } from '../devices/service.ts'\n",
    "const m = await import('../devices/service.ts')\n",
  ]
  for (const reach of reaches)
    assert.equal(doorViolations([{ file: inAlerts, text: reach }]).length, 1, reach)
  assert.equal(doorViolations([{ file: inAlerts, text: "import './schemas.ts'\n" }]).length, 0)
  assert.equal(doorViolations([{ file: inAlerts, text: "export * from '../devices/index.ts'\n" }]).length, 0)
})

test('the simulator check reports any import of src but platform/mqtt, and allows packages', () => {
  const inSimulator = join(src, 'modules', 'simulator', 'probe.ts')
  const count = (spec: string) => simulatorViolations([{ file: inSimulator, text: text(spec) }]).length
  assert.equal(count('../devices/index.ts'), 1)
  assert.equal(count('../../platform/db/index.ts'), 1)
  assert.equal(count('../../config.ts'), 1)
  assert.equal(simulatorViolations([{ file: inSimulator, text: "import '../../version.ts'\n" }]).length, 1)
  assert.equal(count('../../platform/mqtt/index.ts'), 0)
  assert.equal(count('../../protocol/index.ts'), 0)
  assert.equal(count('./fleet.ts'), 0)
  assert.equal(simulatorViolations([{ file: inSimulator, text: "import mqtt from 'mqtt'\n" }]).length, 0)
  assert.equal(
    simulatorViolations([{ file: inSimulator, text: "import { join } from 'node:path'\n" }]).length,
    0,
  )
  // Files of other modules are not the simulator's business here.
  assert.equal(simulatorViolations([{ file: inAlerts, text: text('../devices/index.ts') }]).length, 0)
})

test('the protocol check reports any import of src outside it, and allows its own files and packages', () => {
  const inProtocol = join(protocol, 'probe.ts')
  const count = (source: string) => protocolViolations([{ file: inProtocol, text: source }]).length
  assert.equal(count(text('./device-id.ts')), 0)
  assert.equal(count("import { Type } from 'typebox'\n"), 0)
  assert.equal(count("import { createHash } from 'node:crypto'\n"), 0)
  assert.equal(count(text('../platform/errors.ts')), 1)
  assert.equal(count(text('../config.ts')), 1)
  assert.equal(count(text('../modules/devices/index.ts')), 1)
  assert.equal(count("export * from '../platform/schemas.ts'\n"), 1)
  // Files outside the protocol are not its business here.
  assert.equal(protocolViolations([{ file: inAlerts, text: text('../devices/index.ts') }]).length, 0)
})

test('the config check reports a module importing src/config, type-only imports included', () => {
  const count = (file: string, source: string) => configViolations([{ file, text: source }]).length
  assert.equal(count(inAlerts, "import type { Config } from '../../config.ts'\n"), 1)
  assert.equal(count(inAlerts, "import { loadConfig } from '../../config/load.ts'\n"), 1)
  assert.equal(count(inAlerts, "import '../../config.ts'\n"), 1)
  assert.equal(count(inAlerts, "import type { AlertsConfig } from './alerts-config.ts'\n"), 0)
  assert.equal(count(join(src, 'app.ts'), "import type { Config } from './config.ts'\n"), 0)
  assert.equal(count(join(src, 'cli', 'token.ts'), "import { loadConfig } from '../config.ts'\n"), 0)
})

test('the cycle check finds a cycle, and none in a chain', () => {
  const chain = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', []],
  ])
  assert.deepEqual(cyclesOf(chain), [])
  const loop = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ])
  assert.deepEqual(
    cyclesOf(loop).map((c) => c.sort()),
    [['a', 'b', 'c']],
  )
  assert.deepEqual(cyclesOf(new Map([['a', ['a']]])), [['a']])
})

test('test files live by kind: test/unit/<module or layer>/, test/app/, test/process/, test/lint/', () => {
  const kinds = new Set(['app', 'process', 'lint'])
  const misplaced = filesUnder(join(root, 'test'))
    .filter((file) => file.endsWith('.test.ts'))
    .map((file) => relative(join(root, 'test'), file).split(sep))
    .filter(
      (parts) =>
        !(parts[0] === 'unit' ? parts.length === 3 : parts.length === 2 && kinds.has(parts[0] as string)),
    )
    .map((parts) => parts.join('/'))
  assert.deepEqual(misplaced, [])
})
