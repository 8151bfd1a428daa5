// Host in header operations, as Istio's VirtualService validation has it: a request's Host
// may be set or added (both mean "rewrite the authority", like rewrite.authority, and one
// of the three per rule), never removed; a response has no Host to touch. The model (synth),
// the sidecar's route-table check and mesh lint (YAML) all ask this module, each in its
// own error style; the sidecar and the Gateway API renderer read the rewrite from it.
// No imports: the sidecar's bundle takes this file alone.

/** Header operations in the shape Istio, the model and the route table share. */
export interface HostHeaderOps {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

/** What Istio refuses about Host in one rule's header operations. */
export type HostHeaderProblem =
  | { readonly kind: 'removed'; readonly name: string }
  | { readonly kind: 'on-response'; readonly op: 'set' | 'add' | 'remove'; readonly name: string }
  | { readonly kind: 'set-twice'; readonly count: number };

const isHost = (name: unknown): boolean => typeof name === 'string' && name.toLowerCase() === 'host';

/** The Host value a request block sets or adds (the authority it rewrites to), if any. */
export function hostRewrite(ops: HostHeaderOps | undefined): string | undefined {
  for (const map of [ops?.set, ops?.add]) {
    for (const [name, value] of Object.entries(map ?? {})) if (isHost(name)) return value;
  }
  return undefined;
}

/** Every problem of one rule, in a fixed order: a removed Host, Host on the response, Host set more than once. */
export function hostHeaderProblems(headers: { readonly request?: HostHeaderOps; readonly response?: HostHeaderOps } | undefined, rewriteAuthority: string | undefined): HostHeaderProblem[] {
  const out: HostHeaderProblem[] = [];
  // Lint reads hand-written YAML: a malformed list is another check's finding, not a crash here.
  const list = (x: unknown): readonly unknown[] => (Array.isArray(x) ? x : []);
  const removed = list(headers?.request?.remove).find(isHost) as string | undefined;
  if (removed !== undefined) out.push({ kind: 'removed', name: removed });
  for (const op of ['set', 'add', 'remove'] as const) {
    const ops = headers?.response;
    const name = (op === 'remove' ? list(ops?.remove) : Object.keys(ops?.[op] ?? {})).find(isHost) as string | undefined;
    if (name !== undefined) out.push({ kind: 'on-response', op, name });
  }
  const req = headers?.request;
  const count = [...Object.keys(req?.set ?? {}), ...Object.keys(req?.add ?? {})].filter(isHost).length + (rewriteAuthority !== undefined ? 1 : 0);
  if (count > 1) out.push({ kind: 'set-twice', count });
  return out;
}

/**
 * Headers a route may not set or add: message framing and connection management belong to
 * the data plane (Envoy writes its own; the node sidecar frames every message itself), and
 * a rule that set them would reframe the message for the next hop.
 */
export const DATA_PLANE_HEADERS: readonly string[] = ['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];
