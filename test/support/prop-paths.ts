// The public props of a construct, read from its TypeScript declaration: every property
// path (arrays as `[]`, records as `{}`), recursing into object types this project
// declares. Used by the prop-walk test so that new props are covered without a list.
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.join(__dirname, '..', '..');
let program: ts.Program | undefined;
const REFERENCES = new Set(['ServiceRef', 'IServiceRef']);

function checker(): ts.TypeChecker {
  program ??= ts.createProgram([path.join(ROOT, 'constructs', 'index.ts')], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, skipLibCheck: true });
  return program.getTypeChecker();
}

// Utility types over our own interfaces (Omit<MeshWorkloadProps, ...>) are walked too.
const UTILITY = new Set(['Omit', 'Pick', 'Partial', 'Readonly', 'Required']);
const own = (t: ts.Type) => UTILITY.has(t.aliasSymbol?.name ?? '') || ((t.aliasSymbol ?? t.getSymbol())?.declarations?.some((d) => {
  const f = d.getSourceFile().fileName;
  return f.startsWith(ROOT) && !f.includes('node_modules');
}) ?? false);

/** A declared property: its path and whether the type lets it be left out. */
export interface PropPath { readonly path: string; readonly optional: boolean }

/** Property paths of the exported interface `name` in constructs/ or model/. */
export function propPaths(name: string): PropPath[] {
  const tc = checker();
  const sym = program!.getSourceFiles().filter((f) => f.fileName.startsWith(ROOT) && !f.fileName.includes('node_modules'))
    .flatMap((f) => { const s = tc.getSymbolAtLocation(f); return s ? tc.getExportsOfModule(s) : []; })
    .find((s) => s.name === name);
  if (!sym) throw new Error(`no exported type ${name}`);
  const out = new Map<string, boolean>();
  const seen = new Set<ts.Type>();
  const walk = (t: ts.Type, prefix: string) => {
    t = tc.getNonNullableType(t);
    if (t.isUnion()) { for (const u of t.types) walk(u, prefix); return; }
    if (tc.isArrayType(t) || tc.isTupleType(t)) { for (const a of tc.getTypeArguments(t as ts.TypeReference)) walk(a, `${prefix}[]`); return; }
    if (!(t.flags & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) || t.getCallSignatures().length) return;
    const index = t.getStringIndexType();
    if (index) { walk(index, `${prefix}{}`); return; }
    // Classes (constructs, Duration) and service references are values passed whole.
    const symbol = t.aliasSymbol ?? t.getSymbol();
    const mine = t.isIntersection() ? t.types.some(own) : own(t);
    if (!mine || seen.has(t) || (symbol && (symbol.flags & ts.SymbolFlags.Class || REFERENCES.has(symbol.name)))) return;
    seen.add(t);
    for (const p of t.getProperties()) {
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      if (!decl) continue;
      const full = prefix ? `${prefix}.${p.name}` : p.name;
      // Optional when any declaration (of any union member) says so.
      out.set(full, (out.get(full) ?? false) || (p.flags & ts.SymbolFlags.Optional) !== 0);
      walk(tc.getTypeOfSymbolAtLocation(p, decl), full);
    }
    seen.delete(t);
  };
  walk(tc.getDeclaredTypeOfSymbol(sym), '');
  return [...out].sort(([a], [b]) => a.localeCompare(b)).map(([path, optional]) => ({ path, optional }));
}
