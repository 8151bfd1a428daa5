// One sticky pull-request comment through GitHub's REST API: the comment that carries
// COMMENT_MARKER is updated, or one is created. Node's own fetch; no SDK.
import { COMMENT_MARKER } from './comment';

export interface StickyCommentOptions {
  /** https://api.github.com, or GITHUB_API_URL on GitHub Enterprise. */
  readonly apiUrl: string;
  /** owner/name */
  readonly repository: string;
  readonly pullRequest: number;
  readonly token: string;
  readonly body: string;
}

/** Creates or updates the comment; resolves with what was done and the comment's id. */
export async function postStickyComment(o: StickyCommentOptions): Promise<{ action: 'created' | 'updated'; id: number }> {
  const headers = { authorization: `Bearer ${o.token}`, accept: 'application/vnd.github+json', 'content-type': 'application/json', 'user-agent': 'cdk8s-mesh' };
  const base = `${o.apiUrl.replace(/\/$/, '')}/repos/${o.repository}`;
  const call = async (method: string, url: string, body?: unknown) => {
    const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`GitHub API ${method} ${url}: ${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.json() as Promise<any>;
  };
  for (let page = 1; page <= 20; page++) {
    const comments: Array<{ id: number; body?: string }> = await call('GET', `${base}/issues/${o.pullRequest}/comments?per_page=100&page=${page}`);
    const mine = comments.find((c) => c.body?.includes(COMMENT_MARKER));
    if (mine) {
      await call('PATCH', `${base}/issues/comments/${mine.id}`, { body: o.body });
      return { action: 'updated', id: mine.id };
    }
    if (comments.length < 100) break;
  }
  const created = await call('POST', `${base}/issues/${o.pullRequest}/comments`, { body: o.body });
  return { action: 'created', id: created.id };
}
