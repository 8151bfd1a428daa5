import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { COMMENT_MARKER } from '../plan';

const REPO = path.join(__dirname, '..');
const BIN = path.join(REPO, 'bin', 'cdk8s-mesh.js');
const ACTION = path.join(REPO, '.github', 'actions', 'mesh-plan', 'action.yml');
const WORKFLOW = path.join(REPO, '.github', 'workflows', 'mesh-plan.yml');

/** A stand-in for GitHub's issue-comments API, recording what it is asked. */
async function fakeGitHub(): Promise<{ url: string; calls: string[]; comments: Array<{ id: number; body: string }>; close(): Promise<void> }> {
  const calls: string[] = [];
  const comments: Array<{ id: number; body: string }> = [{ id: 1, body: 'LGTM' }];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      calls.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      const json = body ? JSON.parse(body) : undefined;
      res.setHeader('content-type', 'application/json');
      const patch = /^\/repos\/acme\/shop\/issues\/comments\/(\d+)$/.exec(req.url!);
      if (req.method === 'GET' && /^\/repos\/acme\/shop\/issues\/42\/comments/.test(req.url!)) {
        res.end(JSON.stringify(comments));
      } else if (req.method === 'POST' && req.url === '/repos/acme/shop/issues/42/comments') {
        comments.push({ id: 100 + comments.length, body: json.body });
        res.end(JSON.stringify(comments[comments.length - 1]));
      } else if (req.method === 'PATCH' && patch) {
        const c = comments.find((x) => x.id === Number(patch[1]))!;
        c.body = json.body;
        res.end(JSON.stringify(c));
      } else {
        res.statusCode = 404;
        res.end('{"message":"Not Found"}');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, comments, close: () => new Promise((r) => server.close(() => r())) };
}

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd = REPO) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
  execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as any).code ?? 1) : 0, stdout, stderr }));
});

/** A base directory in which bookinfo-reviews-80-20 still splits 95/5. */
function baseDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-comment-'));
  expect(spawnSync(process.execPath, [BIN, 'synth', '--out', dir, 'bookinfo-reviews-80-20'], { cwd: REPO }).status).toBe(0);
  const file = path.join(dir, 'bookinfo-reviews-80-20.k8s.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('weight: 80', 'weight: 95').replace('weight: 20', 'weight: 5'));
  return dir;
}

test('plan --diff --comment: the marker, the changes, a graph of the changed hosts only, the gates', () => {
  const dir = baseDir();
  const file = path.join(dir, 'comment.md');
  const r = spawnSync(process.execPath, [BIN, 'plan', '--diff', dir, '--comment', file, '--max-weight-shift', '10', 'bookinfo-reviews-80-20'], { cwd: REPO, encoding: 'utf8' });
  expect(r.status).toBe(1);
  const body = fs.readFileSync(file, 'utf8');
  expect(body.startsWith(`${COMMENT_MARKER}\n## Mesh traffic plan\n`)).toBe(true);
  expect(body).toContain(`Against directory ${dir}: 1 chart changes traffic.`);
  expect(body).toContain('**Refused by the plan gates:**\n- bookinfo-reviews-80-20: reviews.bookinfo rule 1 (every request): reviews.bookinfo v1 moved 15 points, 95% -> 80% (more than 10)');
  expect(body).toContain('  - rule 1 (every request): reviews.bookinfo v1 95% -> 80% (-15)');
  const graph = body.slice(body.indexOf('```mermaid'), body.lastIndexOf('```'));
  expect(graph).toContain('("reviews.bookinfo")');
  expect(graph).not.toContain('details.bookinfo'); // unchanged hosts stay out of the graph
  fs.rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('github-comment: one sticky comment', () => {
  test('created the first time, updated (not duplicated) the next', async () => {
    const gh = await fakeGitHub();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gh-')), 'c.md');
    const env = { GITHUB_API_URL: gh.url, GITHUB_TOKEN: 't0ken', GITHUB_REPOSITORY: 'acme/shop' };
    fs.writeFileSync(file, `${COMMENT_MARKER}\nfirst\n`);
    const first = await run(process.execPath, [BIN, 'github-comment', file, '--pr', '42'], env);
    expect([first.code, first.stdout.trim()]).toEqual([0, 'github-comment: created comment 101 on acme/shop#42']);
    fs.writeFileSync(file, `${COMMENT_MARKER}\nsecond\n`);
    const second = await run(process.execPath, [BIN, 'github-comment', file, '--pr', '42'], env);
    expect([second.code, second.stdout.trim()]).toEqual([0, 'github-comment: updated comment 101 on acme/shop#42']);
    expect(gh.comments).toEqual([{ id: 1, body: 'LGTM' }, { id: 101, body: `${COMMENT_MARKER}\nsecond\n` }]);
    expect(gh.calls.map((c) => c.replace(/\?.*? /, ' '))).toEqual([
      'GET /repos/acme/shop/issues/42/comments Bearer t0ken', 'POST /repos/acme/shop/issues/42/comments Bearer t0ken',
      'GET /repos/acme/shop/issues/42/comments Bearer t0ken', 'PATCH /repos/acme/shop/issues/comments/101 Bearer t0ken',
    ]);
    await gh.close();
  }, 60_000);

  test('what it lacks is named: token, repository, pull request', async () => {
    const r = await run(process.execPath, [BIN, 'github-comment', 'c.md'], { GITHUB_TOKEN: '', GITHUB_REPOSITORY: '', GITHUB_EVENT_PATH: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing GITHUB_TOKEN, --repo or GITHUB_REPOSITORY, --pr or a pull_request event in GITHUB_EVENT_PATH');
  });
});

describe('the GitHub Action', () => {
  const action = YAML.parse(fs.readFileSync(ACTION, 'utf8'));

  test('every input it uses is declared; the workflow passes only declared inputs', () => {
    const used = [...fs.readFileSync(ACTION, 'utf8').matchAll(/inputs\.([a-z-]+)/g)].map((m) => m[1]);
    expect(used.filter((u) => !(u in action.inputs))).toEqual([]);
    const workflow = YAML.parse(fs.readFileSync(WORKFLOW, 'utf8'));
    const step = workflow.jobs.plan.steps.find((s: any) => s.uses === './.github/actions/mesh-plan');
    expect(Object.keys(step.with).filter((k) => !(k in action.inputs))).toEqual([]);
    expect(workflow.permissions['pull-requests']).toBe('write');
  });

  test("its script, run as the runner would (event, token, API), comments and passes the gates' status on", async () => {
    const gh = await fakeGitHub();
    const dir = baseDir();
    const event = path.join(dir, 'event.json');
    fs.writeFileSync(event, JSON.stringify({ pull_request: { number: 42 } }));
    const script = action.runs.steps[0].run as string;
    const env = {
      GITHUB_TOKEN: 't0ken', GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: 'acme/shop', GITHUB_EVENT_PATH: event, RUNNER_TEMP: dir,
      BASE: dir, MAX_SHIFT: '10', FAIL_ON_REMOVAL: 'true', ALLOW: '', CLI: `${process.execPath} ${BIN}`,
    };
    const refused = await run('bash', ['-e', '-c', script], env);
    expect(refused.code).toBe(1);
    expect(gh.comments[1].body).toContain('moved 15 points, 95% -> 80% (more than 10)');
    const allowed = await run('bash', ['-e', '-c', script], { ...env, ALLOW: 'reviews.bookinfo' });
    expect(allowed.code).toBe(0);
    expect(gh.comments).toHaveLength(2); // the same comment, updated
    expect(gh.comments[1].body).not.toContain('Refused by the plan gates');
    await gh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 180_000);
});
