import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** Relative import targets of a file, resolved to absolute paths. */
function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)].map(
    (m) => m[1] as string,
  )
  specs.push(...[...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1] as string))
  return specs.map((s) => resolve(dirname(file), s))
}

const moduleOf = (path: string): string | undefined => {
  const rel = relative(join(src, 'modules'), path)
  return rel.startsWith('..') ? undefined : rel.split(sep)[0]
}

/** A unit test under test/unit/<module>/ may open its own module's internals (STYLE.md). */
const unitTestModuleOf = (path: string): string | undefined => {
  const rel = relative(join(root, 'test', 'unit'), path)
  return rel.startsWith('..') ? undefined : rel.split(sep)[0]
}

/** Every reach into a module from outside it that does not go through its index.ts. */
function doorViolations(files: { file: string; text: string }[]): string[] {
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
    if (relative(join(src, 'platform'), file).startsWith('..') === false) {
      for (const target of targets) {
        if (moduleOf(target))
          violations.push(`platform file ${relative(root, file)} imports module ${relative(root, target)}`)
      }
    }
  }
  return violations
}

test('modules are entered only through their index.ts, and platform never imports a module', () => {
  const files = [src, join(root, 'test'), join(root, 'bench')].flatMap((dir) =>
    filesUnder(dir).map((file) => ({ file, text: readFileSync(file, 'utf8') })),
  )
  assert.ok(files.length > 10)
  assert.deepEqual(doorViolations(files), [])
})

test('the door check reports reaches past index.ts, and allows a module its own files', () => {
  const inAlerts = join(src, 'modules', 'alerts', 'probe.ts')
  const inPlatform = join(src, 'platform', 'probe.ts')
  const text = (spec: string) => `import { x } from '${spec}'\n`
  assert.equal(doorViolations([{ file: inAlerts, text: text('../devices/service.ts') }]).length, 1)
  assert.equal(doorViolations([{ file: inAlerts, text: text('../devices/index.ts') }]).length, 0)
  assert.equal(doorViolations([{ file: inAlerts, text: text('./repository.ts') }]).length, 0)
  assert.equal(doorViolations([{ file: inPlatform, text: text('../modules/devices/index.ts') }]).length, 1)
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
