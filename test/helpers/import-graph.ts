import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

/** Every .ts file under a folder. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : path.endsWith('.ts') ? [path] : []
  })
}

/**
 * Relative import targets of a file, resolved to absolute paths: `import … from`, `import type …`,
 * `export … from` (`export *` included), side-effect `import './x.ts'` and dynamic `import('./x.ts')`.
 * Packages and node built-ins are not files of the project and are left out.
 */
export function importsOf(file: string, text: string): string[] {
  const patterns = [
    /(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g,
    /(?:^|[;\n])\s*import\s*['"](\.[^'"]+)['"]/g,
    /import\(\s*['"](\.[^'"]+)['"]\s*\)/g,
  ]
  const specs = patterns.flatMap((pattern) => [...text.matchAll(pattern)].map((m) => m[1] as string))
  return specs.map((s) => resolve(dirname(file), s))
}

/** The cycles of an import graph (each as the files on it), found by Tarjan's strongly connected components. */
export function cyclesOf(graph: Map<string, string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (node: string) => {
    index.set(node, counter)
    low.set(node, counter++)
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number))
      }
    }
    if (low.get(node) !== index.get(node)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop() as string
      onStack.delete(member)
      component.push(member)
    } while (member !== node)
    const selfLoop = (graph.get(node) ?? []).includes(node)
    if (component.length > 1 || selfLoop) cycles.push(component)
  }
  for (const node of graph.keys()) if (!index.has(node)) visit(node)
  return cycles
}
