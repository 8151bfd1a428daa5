import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * This package's version, from its package.json (the one place it is written), found
 * by walking up from this file: the same code runs from the sources and from lib/.
 */
export const PACKAGE_VERSION: string = (() => {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cdk8s-mesh' && pkg.version) return pkg.version;
    } catch { /* no package.json here */ }
    if (dirname(dir) === dir) throw new Error('cdk8s-mesh: package.json not found above ' + __dirname);
  }
})();
