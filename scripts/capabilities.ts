// Writes the capability table (model/capabilities.ts) into the README between its markers.
// `npm run docs:capabilities`; test/capabilities.test.ts fails when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capabilityTableMarkdown } from '../model/capabilities';

export const BEGIN = '<!-- capabilities:begin -->';
export const END = '<!-- capabilities:end -->';

/** The README with its capability section replaced by the table the model gives. */
export function withCapabilityTable(readme: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} ... ${END} section`);
  return `${readme.slice(0, a + BEGIN.length)}\n${capabilityTableMarkdown()}\n${readme.slice(b)}`;
}

if (require.main === module) {
  const file = join(__dirname, '..', 'README.md');
  writeFileSync(file, withCapabilityTable(readFileSync(file, 'utf8')));
}
