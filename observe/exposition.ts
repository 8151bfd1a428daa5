// The Prometheus text exposition format (version 0.0.4), read into samples. Written here
// because the npm parser for it (parse-prometheus-text-format 1.1.1) drops the labels of
// histogram series, and observe reads little more than sample lines.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One line's labels: `name="value",...` with the format's escapes (\\, \", \n). */
function parseLabels(s: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    while (s[i] === ',' || s[i] === ' ') i++;
    if (i >= s.length) break;
    const eq = s.indexOf('=', i);
    if (eq < 0 || s[eq + 1] !== '"') throw new Error(`not a label in ${JSON.stringify(line.slice(0, 200))}`);
    const name = s.slice(i, eq).trim();
    let v = '';
    let j = eq + 2;
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\' && j + 1 < s.length) { j++; v += s[j] === 'n' ? '\n' : s[j]; } else v += s[j];
    }
    if (j >= s.length) throw new Error(`unterminated label value in ${JSON.stringify(line.slice(0, 200))}`);
    labels[name] = v;
    i = j + 1;
  }
  return labels;
}

/** The samples of an exposition; comments (HELP, TYPE) are skipped, a malformed line throws naming it. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      const close = line.lastIndexOf('}');
      if (close < brace) throw new Error(`unterminated labels in ${JSON.stringify(line.slice(0, 200))}`);
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, close), line);
      rest = line.slice(close + 1).trim();
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    // A value, then an optional timestamp.
    // Special values in any case, as Prometheus's float parser reads them (prom-client writes "Nan").
    const word = rest.split(/\s+/)[0];
    const value = /^[+-]?inf$/i.test(word) ? (word.startsWith('-') ? -Infinity : Infinity) : /^nan$/i.test(word) ? NaN : Number(word);
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name) || (Number.isNaN(value) && !/^nan$/i.test(word))) throw new Error(`not a sample line: ${JSON.stringify(line.slice(0, 200))}`);
    out.push({ name, labels, value });
  }
  return out;
}
