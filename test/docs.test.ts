// The API reference (docs/api, typedoc) is only as good as the doc comments: every prop
// of every construct's props has a description, and every optional one says its @default.
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.join(__dirname, '..');
const program = ts.createProgram([path.join(ROOT, 'constructs', 'index.ts')], { strict: true, skipLibCheck: true });
program.getTypeChecker(); // binds the files: JSDoc lookups need parent pointers
const PROPS = /(Props|Options|Security|Resources)$/;

function propsInterfaces(): ts.InterfaceDeclaration[] {
  return program.getSourceFiles()
    .filter((f) => f.fileName.startsWith(path.join(ROOT, 'constructs')))
    .flatMap((f) => f.statements.filter((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s)
      && PROPS.test(s.name.text) && !!s.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)));
}

test('every construct props interface and each of its props is documented, optional props with @default', () => {
  const missing: string[] = [];
  const interfaces = propsInterfaces();
  expect(interfaces.length).toBeGreaterThanOrEqual(10);
  for (const i of interfaces) {
    if (!ts.getJSDocCommentsAndTags(i).length) missing.push(`${i.name.text}: no description`);
    for (const m of i.members) {
      if (!ts.isPropertySignature(m)) continue;
      const name = `${i.name.text}.${(m.name as ts.Identifier).text}`;
      const docs = ts.getJSDocCommentsAndTags(m).filter(ts.isJSDoc);
      const text = docs.map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? '')).join('').trim();
      if (!text) missing.push(`${name}: no description`);
      if (m.questionToken && !ts.getJSDocTags(m).some((t) => t.tagName.text === 'default')) missing.push(`${name}: optional without @default`);
    }
  }
  expect(missing).toEqual([]);
});
