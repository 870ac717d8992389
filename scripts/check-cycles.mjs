#!/usr/bin/env node
// Fails when the engine (electron/engine) has an import cycle. Neither
// eslint-plugin-import nor eslint-plugin-import-x is installed, so this is the
// `no-cycle` rule: run by `npm run lint` and by test/unit/import-cycles.test.ts.
//
// Imports are read with the TypeScript compiler (node_modules/typescript) and
// resolved as the build does ('./x.js' is './x.ts'). Type-only imports and
// exports (`import type`, or every name marked `type`) are left out: they are
// erased from the output and make no cycle at run time.
//
// Usage: node scripts/check-cycles.mjs [folder ...]   (default: electron/engine)
// Exit code 1 and one line per cycle when there is one.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(new URL('..', import.meta.url).pathname);

/** The .ts files below `dir`. */
function tsFiles(dir) {
  const out = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...tsFiles(p));
    else if (/\.tsx?$/.test(d.name) && !d.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Whether an import or export declaration brings in values (not only types). */
function isValueImport(node) {
  if (ts.isImportDeclaration(node)) {
    const c = node.importClause;
    if (!c) return true; // import './side-effect.js'
    if (c.isTypeOnly) return false;
    if (c.name) return true;
    const b = c.namedBindings;
    if (!b) return false;
    if (ts.isNamespaceImport(b)) return true;
    return b.elements.length === 0 || b.elements.some((e) => !e.isTypeOnly);
  }
  if (ts.isExportDeclaration(node)) {
    if (!node.moduleSpecifier || node.isTypeOnly) return false;
    const c = node.exportClause;
    if (!c || !ts.isNamedExports(c)) return true;
    return c.elements.some((e) => !e.isTypeOnly);
  }
  return false;
}

/** The file a relative specifier names, or null (packages, node: modules). */
function resolveSpecifier(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec);
  const stem = base.replace(/\.(m?js|tsx?)$/, '');
  for (const c of [`${stem}.ts`, `${stem}.tsx`, join(base, 'index.ts')]) if (existsSync(c)) return c;
  return null;
}

/** file -> the files it imports values from. */
export function importGraph(dirs) {
  const graph = new Map();
  for (const dir of dirs) {
    for (const file of tsFiles(resolve(root, dir))) {
      const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
      const deps = new Set();
      for (const st of src.statements) {
        if (!isValueImport(st) || !st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier)) continue;
        const to = resolveSpecifier(file, st.moduleSpecifier.text);
        if (to) deps.add(to);
      }
      graph.set(file, deps);
    }
  }
  return graph;
}

/** The cycles among the graph's own files: one (the first found) per strongly connected component. */
export function findCycles(graph) {
  // Tarjan's strongly connected components; a component of more than one file holds a cycle.
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const comps = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || graph.get(v)?.has(v)) comps.push(comp);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  // One concrete cycle per component: a path from its first file back to itself.
  return comps.map((comp) => {
    const inComp = new Set(comp);
    const start = [...comp].sort()[0];
    const prev = new Map([[start, null]]);
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift();
      for (const w of graph.get(v) ?? []) {
        if (!inComp.has(w)) continue;
        if (w === start) {
          const path = [start];
          for (let u = v; u !== start; u = prev.get(u)) path.splice(1, 0, u);
          return [...path, start];
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  });
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const dirs = process.argv.slice(2);
  const cycles = findCycles(importGraph(dirs.length > 0 ? dirs : ['electron/engine']));
  for (const c of cycles) console.error(`import cycle: ${c.map((f) => relative(root, f)).join(' -> ')}`);
  if (cycles.length > 0) {
    console.error(`${cycles.length} import cycle${cycles.length === 1 ? '' : 's'} (see scripts/check-cycles.mjs).`);
    process.exit(1);
  }
}
