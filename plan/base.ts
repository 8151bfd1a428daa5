// The base of a `plan --diff`: a directory of an earlier synth, or a git ref synthesized
// into a temporary directory. Errors say which side failed and why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export class PlanBaseError extends Error {}

export interface Base { readonly dir: string; readonly description: string; cleanup(): void }

/** The chart files of a synth directory: chart id -> file. */
export function chartFiles(dir: string): Map<string, string> {
  return new Map(readdirSync(dir).filter((f) => f.endsWith('.k8s.yaml')).map((f) => [f.slice(0, -'.k8s.yaml'.length), join(dir, f)]));
}

/**
 * A directory of YAML as it stands, or a git ref of the repository around `cwd`: checked
 * out in a temporary worktree sharing this checkout's node_modules and synthesized there
 * (with its own bin/cdk8s-mesh.js when it has one, else this CLI on its cdk8s.yaml app).
 */
export function resolveBase(spec: string, cwd: string, cli: string): Base {
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    if (chartFiles(spec).size === 0) throw new PlanBaseError(`base: directory ${spec} has no <chart>.k8s.yaml files`);
    return { dir: resolve(spec), description: `directory ${spec}`, cleanup: () => undefined };
  }
  const git = (args: string[], where = cwd) => spawnSync('git', args, { cwd: where, encoding: 'utf8' });
  const top = git(['rev-parse', '--show-toplevel']);
  if (top.status !== 0) throw new PlanBaseError(`base: ${spec} is not a directory, and ${cwd} is not in a git repository to read it as a ref from`);
  const commit = git(['rev-parse', '--verify', '--quiet', `${spec}^{commit}`]);
  if (commit.status !== 0) throw new PlanBaseError(`base: ${spec} is neither a directory nor a git ref of ${top.stdout.trim()} (branch, tag or commit)`);
  const root = top.stdout.trim();
  const work = mkdtempSync(join(tmpdir(), 'cdk8s-mesh-base-'));
  const tree = join(work, 'tree');
  const cleanup = () => {
    git(['worktree', 'remove', '--force', tree], root);
    rmSync(work, { recursive: true, force: true });
  };
  const added = git(['worktree', 'add', '--detach', '--quiet', tree, commit.stdout.trim()], root);
  if (added.status !== 0) {
    cleanup();
    throw new PlanBaseError(`base: checking out ${spec} failed: ${added.stderr.trim()}`);
  }
  // The ref's sources with this checkout's installed packages (a ref needs no npm ci).
  const rel = cwd.slice(root.length).replace(/^\//, '');
  const where = join(tree, rel);
  if (existsSync(join(cwd, 'node_modules')) && !existsSync(join(where, 'node_modules'))) symlinkSync(join(cwd, 'node_modules'), join(where, 'node_modules'));
  const out = join(work, 'dist');
  const ownBin = join(where, 'bin', 'cdk8s-mesh.js');
  const synth = spawnSync(process.execPath, [existsSync(ownBin) ? ownBin : cli, 'synth', '--out', out], { cwd: where, encoding: 'utf8', env: process.env });
  if (synth.status !== 0) {
    cleanup();
    const why = `${synth.stderr}\n${synth.stdout}`.trim().split('\n').slice(-6).join('\n');
    throw new PlanBaseError(`base: ${spec} (${commit.stdout.trim().slice(0, 12)}) failed to synthesize:\n${why}`);
  }
  return { dir: out, description: `git ref ${spec} (${commit.stdout.trim().slice(0, 12)})`, cleanup };
}
