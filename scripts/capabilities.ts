// Writes the capability table (model/capabilities.ts) into docs/data-planes.md between its markers.
// `npm run docs:capabilities`; test/capabilities.test.ts fails when docs/data-planes.md is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilityTableMarkdown } from '../model/capabilities';

export const BEGIN = '<!-- capabilities:begin -->';
export const END = '<!-- capabilities:end -->';

/** docs/data-planes.md with its capability section replaced by the table the model gives. */
export function withCapabilityTable(readme: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/data-planes.md has no ${BEGIN} ... ${END} section`);
  return `${readme.slice(0, a + BEGIN.length)}\n${capabilityTableMarkdown()}\n${readme.slice(b)}`;
}

if (require.main === module) {
  const file = join(__dirname, '..', 'docs', 'data-planes.md');
  writeFileSync(file, withCapabilityTable(readFileSync(file, 'utf8')));
}
