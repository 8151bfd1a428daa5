import { RE2JS } from 're2js';
import { checkDuration, Duration } from './duration';
import { Check } from './errors';
import { DATA_PLANE_HEADERS, hostHeaderProblems } from './host-header';
import { checkDns1123Label, checkHost } from './names';
import { OPEN_SUBSETS, ServiceRef } from './service-ref';

/**
 * One of Istio's StringMatch forms: exactly one of `exact`, `prefix` or `regex` (RE2), as
 * `{ prefix: "/api" }` or `Match.prefix("/api")`. More than one, or none, is refused at synth.
 */
export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

/** A query parameter condition: exactly one of `exact` or `regex` (Istio has no prefix match for parameters). */
export interface QueryParamMatch {
  readonly exact?: string;
  readonly regex?: string;
}

/** A header condition: a StringMatch, or `{ present: true }` (`Match.present()`) for "the header is there at all". */
export interface HeaderMatch extends StringMatch {
  /** Only `true`: the header is there, whatever its value. */
  readonly present?: boolean;
}

/**
 * The match kinds as a union-like class: `Match.exact("v2")`, `Match.prefix("/api")`,
 * `Match.regex("^/v[0-9]+/")`, `Match.present()`. The object forms (`{ prefix: "/api" }`)
 * are the same thing.
 */
export class Match {
  /** The whole value equals `value`. */
  static exact(value: string): StringMatch { return { exact: value }; }
  /** The value starts with `value`. */
  static prefix(value: string): StringMatch { return { prefix: value }; }
  /** The whole value matches the RE2 expression `pattern` (checked at synth). */
  static regex(pattern: string): StringMatch { return { regex: pattern }; }
  /** A header condition: the header is there at all. */
  static present(): HeaderMatch { return { present: true }; }

  private constructor() {}
}

/**
 * Envoy's retry conditions (`retryOn`) as constants, so that a typo fails to compile in every
 * language: `retryOn: [RetryOn.FIVE_XX, RetryOn.CONNECT_FAILURE]`. The strings ("5xx") and bare
 * HTTP status codes ("503") are accepted as well.
 */
export class RetryOn {
  static readonly FIVE_XX = '5xx';
  static readonly GATEWAY_ERROR = 'gateway-error';
  static readonly RESET = 'reset';
  static readonly RESET_BEFORE_REQUEST = 'reset-before-request';
  static readonly CONNECT_FAILURE = 'connect-failure';
  static readonly ENVOY_RATELIMITED = 'envoy-ratelimited';
  static readonly RETRIABLE_4XX = 'retriable-4xx';
  static readonly REFUSED_STREAM = 'refused-stream';
  static readonly RETRIABLE_STATUS_CODES = 'retriable-status-codes';
  static readonly RETRIABLE_HEADERS = 'retriable-headers';
  static readonly HTTP3_POST_CONNECT_FAILURE = 'http3-post-connect-failure';
  /** gRPC status codes (Istio passes them to Envoy's grpc-on). */
  static readonly CANCELLED = 'cancelled';
  static readonly DEADLINE_EXCEEDED = 'deadline-exceeded';
  static readonly INTERNAL = 'internal';
  static readonly RESOURCE_EXHAUSTED = 'resource-exhausted';
  static readonly UNAVAILABLE = 'unavailable';
  /** A bare HTTP status code to retry on, e.g. RetryOn.status(503) is "503". */
  static status(code: number): string { return String(code); }

  private constructor() {}
}

/**
 * One match block. All conditions in a block must hold (AND); a rule's blocks are
 * tried in order and any one suffices (OR), as in Istio's HTTPMatchRequest list.
 */
export interface HttpMatch {
  /** Name of the match block, copied into Istio's access logs. @default - none */
  readonly name?: string;
  /** @default - any URI */
  readonly uri?: StringMatch;
  /** HTTP method, e.g. "GET" (exact) or a StringMatch. @default - any method */
  readonly method?: string | StringMatch;
  /** @default - no header condition */
  readonly headers?: { [key: string]: HeaderMatch };
  /** Headers that must NOT match. @default - none */
  readonly withoutHeaders?: { [key: string]: HeaderMatch };
  /** @default - no query condition */
  readonly queryParams?: { [key: string]: QueryParamMatch };
  /** The port the request was addressed to. @default - any port */
  readonly port?: number;
  /** Match `uri` case-insensitively. @default false */
  readonly ignoreUriCase?: boolean;
}

/** A weighted destination: an object (workload, service), not a host string. */
export interface RouteDestination {
  readonly to: ServiceRef;
  /** A subset the destination's DestinationRule defines. @default - all endpoints */
  readonly subset?: string;
  /** Service port. @default - the Service's only port */
  readonly port?: number;
  /**
   * Share of traffic in percent. Required when a rule has several destinations;
   * the weights of one rule must add up to exactly 100.
   * @default 100 for a single destination
   */
  readonly weight?: number;
}

/** Retries of a rule (Istio HTTPRetry). */
export interface HttpRetry {
  /** Number of retries; 0 disables them. */
  readonly attempts: number;
  /** @default - the rule's timeout */
  readonly perTryTimeout?: Duration | string;
  /** Envoy retry conditions, e.g. ["5xx", "connect-failure"] or "503". @default - Istio's default set */
  readonly retryOn?: string[];
}

/** Fault injection of a rule: a fixed delay and/or an abort, each for a percentage of requests. */
export interface HttpFault {
  readonly delay?: FaultDelay;
  readonly abort?: FaultAbort;
}

/** Delay a percentage of requests by a fixed time before forwarding them. */
export interface FaultDelay {
  readonly fixedDelay: Duration | string;
  /** Share of requests delayed, 0 to 100. */
  readonly percentage: number;
}

/** Answer a percentage of requests with an HTTP status instead of forwarding them. */
export interface FaultAbort {
  readonly httpStatus: number;
  /** Share of requests aborted, 0 to 100. */
  readonly percentage: number;
}

/** Send a copy of a percentage of requests to another destination (answers are discarded). */
export interface HttpMirror {
  readonly to: ServiceRef;
  readonly subset?: string;
  readonly port?: number;
  /** Share of requests copied. @default 100 */
  readonly percentage?: number;
}

/** Rewrite the URI prefix or the authority before forwarding. */
export interface HttpRewrite {
  /** Replaces the matched URI prefix (or the whole URI for an exact match). @default - unchanged */
  readonly uri?: string;
  /** New Host/authority header. @default - unchanged */
  readonly authority?: string;
}

/** Answer with a redirect instead of forwarding. */
export interface HttpRedirect {
  readonly uri?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly scheme?: 'http' | 'https';
  /** @default 301 */
  readonly redirectCode?: 301 | 302 | 303 | 307 | 308;
}

/** Header operations: set (replace), add (append), remove. */
export interface HeaderOps {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: string[];
}

/** Header operations on the request (before forwarding) and on the response. */
export interface HttpHeaders {
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
}

/** One HTTP rule, as Istio's HTTPRoute: conditions, then where and how to send. */
export interface HttpRule {
  /** @default - none */
  readonly name?: string;
  /** OR of these blocks. @default - every request */
  readonly match?: HttpMatch[];
  /** Weighted destinations. Exactly one of `route` or `redirect`. */
  readonly route?: RouteDestination[];
  readonly redirect?: HttpRedirect;
  /** @default - none */
  readonly rewrite?: HttpRewrite;
  /** @default - no timeout (Istio's default) */
  readonly timeout?: Duration | string;
  /** @default - Istio's default retry policy */
  readonly retries?: HttpRetry;
  /** @default - none */
  readonly fault?: HttpFault;
  /** @default - none */
  readonly mirror?: HttpMirror;
  /** @default - none */
  readonly headers?: HttpHeaders;
}

/** Input for a set of host rules (what a VirtualService expresses). */
export interface TrafficRouteSpec {
  /** The hosts the rules apply to: services (objects) or host names such as "*". */
  readonly hosts: Array<ServiceRef | string>;
  /** Gateway names the rules bind to; "mesh" means sidecars. @default - sidecars only */
  readonly gateways?: string[];
  /** Ordered rules: the first whose match holds wins. */
  readonly http: HttpRule[];
}

// ---------------------------------------------------------------------------
// The validated, normalized model both renderers read.

/** A validated string condition. */
export interface StringMatchModel { readonly kind: 'exact' | 'prefix' | 'regex'; readonly value: string }
/** A validated header condition. */
export interface HeaderMatchModel { readonly kind: 'exact' | 'prefix' | 'regex' | 'present'; readonly value: string }
/** A validated match block. */
export interface MatchModel {
  readonly name?: string;
  readonly uri?: StringMatchModel;
  readonly method?: StringMatchModel;
  readonly headers: { [key: string]: HeaderMatchModel };
  readonly withoutHeaders: { [key: string]: HeaderMatchModel };
  readonly queryParams: { [key: string]: StringMatchModel };
  readonly port?: number;
  readonly ignoreUriCase: boolean;
}
/** A validated destination with its weight. */
export interface DestinationModel { readonly to: ServiceRef; readonly subset?: string; readonly port?: number; readonly weight: number }
/** A validated rule. */
export interface RuleModel {
  readonly name?: string;
  readonly match: MatchModel[];
  /** Empty when the rule redirects. */
  readonly route: DestinationModel[];
  readonly redirect?: HttpRedirect;
  readonly rewrite?: HttpRewrite;
  readonly timeout?: Duration;
  readonly retries?: RetryModel;
  readonly fault?: FaultModel;
  readonly mirror?: MirrorModel;
  readonly headers?: HttpHeaders;
}
/** Validated retries. */
export interface RetryModel { readonly attempts: number; readonly perTryTimeout?: Duration; readonly retryOn?: string[] }
/** A validated fault. */
export interface FaultModel { readonly delay?: FaultDelayModel; readonly abort?: FaultAbort }
/** A validated fault delay. */
export interface FaultDelayModel { readonly fixedDelay: Duration; readonly percentage: number }
/** A validated mirror. */
export interface MirrorModel { readonly to: ServiceRef; readonly subset?: string; readonly port?: number; readonly percentage: number }
/** A validated route: what renderers receive. */
export interface TrafficRouteModel {
  readonly hosts: Array<ServiceRef | string>;
  readonly gateways: string[];
  readonly http: RuleModel[];
}

/** Envoy retry conditions Istio passes through (`retryOn`), besides bare HTTP status codes: RetryOn's constants. */
export const RETRY_ON: readonly string[] = Object.values(RetryOn).filter((v): v is string => typeof v === 'string');

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;


/** Is `pattern` a regular expression RE2 (Envoy's engine) accepts? */
export function isRe2(pattern: string): boolean {
  try {
    RE2JS.compile(pattern);
    return true;
  } catch {
    return false;
  }
}

function stringMatch(check: Check, field: string, value: unknown, allowPresent: boolean): HeaderMatchModel {
  check.object(field, value);
  const keys = Object.keys(value);
  const kinds = allowPresent ? ['exact', 'prefix', 'regex', 'present'] : ['exact', 'prefix', 'regex'];
  if (keys.length !== 1 || !kinds.includes(keys[0])) {
    check.fail(field, value, `exactly one of ${kinds.map((k) => `{ ${k}: ... }`).join(', ')}`);
  }
  const kind = keys[0] as HeaderMatchModel['kind'];
  const v = value[kind];
  if (kind === 'present') {
    if (v !== true) check.fail(`${field}.present`, v, 'true');
    return { kind, value: '' };
  }
  if (typeof v !== 'string') check.fail(`${field}.${kind}`, v, 'a string');
  if (kind === 'regex' && !isRe2(v)) check.fail(`${field}.regex`, v, 'a regular expression in RE2 syntax (no lookaround or backreferences)');
  if (kind === 'prefix' && v.length === 0) check.fail(`${field}.prefix`, v, 'a non-empty prefix (omit the condition to match everything)');
  return { kind, value: v };
}

function headerMap(check: Check, field: string, value: unknown, allowPresent: boolean): Record<string, HeaderMatchModel> {
  if (value === undefined) return {};
  check.object(field, value);
  const out: Record<string, HeaderMatchModel> = {};
  for (const [name, m] of Object.entries(value)) {
    if (!HEADER_NAME.test(name)) check.fail(`${field} key`, name, 'an HTTP header or parameter name (token characters only)');
    const sm = stringMatch(check, `${field}.${name}`, m, allowPresent);
    // Istio matches query parameters by exact value or regex only.
    if (!allowPresent && sm.kind === 'prefix') check.fail(`${field}.${name}`, m, '{ exact: ... } or { regex: ... } (Istio has no prefix match for query parameters)');
    out[allowPresent ? name.toLowerCase() : name] = sm;
  }
  return out;
}

function buildMatch(check: Check, field: string, m: unknown): MatchModel {
  check.object(field, m);
  const known = ['name', 'uri', 'method', 'headers', 'withoutHeaders', 'queryParams', 'port', 'ignoreUriCase'];
  for (const k of Object.keys(m)) if (!known.includes(k)) check.fail(`${field}.${k}`, m[k], `no such match field (known: ${known.join(', ')})`);
  let method: StringMatchModel | undefined;
  if (typeof m.method === 'string') {
    if (!METHODS.includes(m.method)) check.fail(`${field}.method`, m.method, `an HTTP method in upper case (${METHODS.join(', ')})`);
    method = { kind: 'exact', value: m.method };
  } else if (m.method !== undefined) {
    method = stringMatch(check, `${field}.method`, m.method, false) as StringMatchModel;
  }
  if (m.port !== undefined) check.port(`${field}.port`, m.port);
  check.shape(field, m, { name: 'string?', ignoreUriCase: 'boolean?' });
  return {
    name: m.name as string | undefined,
    uri: m.uri === undefined ? undefined : (stringMatch(check, `${field}.uri`, m.uri, false) as StringMatchModel),
    method,
    headers: headerMap(check, `${field}.headers`, m.headers, true),
    withoutHeaders: headerMap(check, `${field}.withoutHeaders`, m.withoutHeaders, true),
    queryParams: headerMap(check, `${field}.queryParams`, m.queryParams, false) as Record<string, StringMatchModel>,
    port: m.port as number | undefined,
    ignoreUriCase: m.ignoreUriCase === true,
  };
}

/** A destination object (a workload, a canary, `externalHost(...)`), not a host string. */
export function checkServiceRef(check: Check, field: string, ref: unknown): asserts ref is ServiceRef {
  if (typeof ref !== 'object' || ref === null || typeof (ref as ServiceRef).serviceName !== 'string') {
    check.fail(field, ref, 'a service object (a MeshWorkload, CanaryRelease, WebTier front or externalHost(...)), not a string');
  }
}

/** Subset and port of a destination must exist on the object it points at. */
function checkTarget(check: Check, field: string, to: ServiceRef, subset: unknown, port: unknown) {
  if (to.noService) check.fail(`${field}.to`, to.serviceName, `a destination with a Service: ${to.serviceName} ${to.noService}`);
  if (subset !== undefined) {
    // Whether it is a defined subset first, whatever else is wrong with the name: the
    // defined ones are what the user needs to see.
    const known = to.subsetNames ?? [];
    // A policy that can still gain subsets is asked again at synth (checkSubsetsDefined).
    const open = (to as { [OPEN_SUBSETS]?: boolean })[OPEN_SUBSETS] === true;
    if (!open && !known.includes(subset as string)) {
      unknownSubset(check, field, to, subset);
    }
    checkDns1123Label(check, `${field}.subset`, subset);
  }
  if (port !== undefined) {
    check.port(`${field}.port`, port);
    if (to.servicePorts && !to.servicePorts.includes(port)) {
      check.fail(`${field}.port`, port, `a port of ${to.serviceName} (${to.servicePorts.join(', ')})`);
    }
  }
}

function unknownSubset(check: Check, field: string, to: ServiceRef, subset: unknown): never {
  const known = to.subsetNames ?? [];
  check.fail(`${field}.subset`, subset, known.length
    ? `a subset defined for ${to.serviceName} (${known.join(', ')})`
    : `no subset, or a destination that knows its subsets: this reference to ${to.serviceName} has none (route to the DestinationPolicy that defines them: { to: policy, subset: ${JSON.stringify(subset)} })`);
}

/**
 * The subsets a route names on a policy that could still gain them (DestinationPolicy,
 * checked again once every addSubset has run): refused as an unknown subset at construction would be.
 */
export function checkSubsetsDefined(where: string, model: TrafficRouteModel): void {
  const check = new Check(where);
  model.http.forEach((r, i) => {
    r.route.forEach((d, j) => {
      if (d.subset !== undefined && !(d.to.subsetNames ?? []).includes(d.subset)) unknownSubset(check, `http[${i}].route[${j}]`, d.to, d.subset);
    });
    if (r.mirror?.subset !== undefined && !(r.mirror.to.subsetNames ?? []).includes(r.mirror.subset)) unknownSubset(check, `http[${i}].mirror`, r.mirror.to, r.mirror.subset);
  });
}

function buildRoute(check: Check, field: string, route: unknown): DestinationModel[] {
  check.array(field, route, 1);
  const many = route.length > 1;
  const out = route.map((d, i): DestinationModel => {
    const f = `${field}[${i}]`;
    check.object(f, d);
    checkServiceRef(check, `${f}.to`, d.to);
    checkTarget(check, f, d.to, d.subset, d.port);
    if (d.weight === undefined && many) check.fail(`${f}.weight`, d.weight, 'a weight on every destination when a rule has several');
    const weight = d.weight === undefined ? 100 : d.weight;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0) {
      check.fail(`${f}.weight`, weight, 'a non-negative integer percentage');
    }
    if (weight > 100) check.fail(`${f}.weight`, weight, 'at most 100 (weights are percentages)');
    return { to: d.to, subset: d.subset as string | undefined, port: d.port as number | undefined, weight };
  });
  const total = out.reduce((s, d) => s + d.weight, 0);
  if (total === 0) check.fail(`${field} weights`, out.map((d) => d.weight), 'at least one non-zero weight');
  if (total !== 100) {
    check.fail(`${field} weights`, out.map((d) => d.weight), `weights adding up to 100 (they add up to ${total})`);
  }
  const seen = new Set<string>();
  for (const [i, d] of out.entries()) {
    const key = `${d.to.serviceNamespace ?? ''}/${d.to.serviceName}/${d.subset ?? ''}/${d.port ?? ''}`;
    if (seen.has(key)) check.fail(`${field}[${i}]`, `${d.to.serviceName}${d.subset ? ':' + d.subset : ''}`, 'each destination at most once per rule');
    seen.add(key);
  }
  return out;
}

function headerOps(check: Check, field: string, ops: unknown): void {
  if (ops === undefined) return;
  check.object(field, ops);
  for (const k of Object.keys(ops)) {
    if (!['set', 'add', 'remove'].includes(k)) check.fail(`${field}.${k}`, ops[k], 'one of set, add, remove');
  }
  for (const k of ['set', 'add'] as const) {
    const map = ops[k];
    if (map === undefined) continue;
    check.object(`${field}.${k}`, map);
    for (const [name, v] of Object.entries(map)) {
      if (!HEADER_NAME.test(name)) check.fail(`${field}.${k} key`, name, 'an HTTP header name');
      if (DATA_PLANE_HEADERS.includes(name.toLowerCase())) check.fail(`${field}.${k} key`, name, `a header other than the framing and connection headers the data plane writes itself (${DATA_PLANE_HEADERS.join(', ')})`);
      if (typeof v !== 'string') check.fail(`${field}.${k}.${name}`, v, 'a string value');
      else if (/[\r\n\0]/.test(v)) check.fail(`${field}.${k}.${name}`, v, 'a header value without CR, LF or NUL characters');
    }
  }
  if (ops.remove !== undefined) {
    check.array(`${field}.remove`, ops.remove);
    for (const name of ops.remove) if (typeof name !== 'string' || !HEADER_NAME.test(name)) check.fail(`${field}.remove`, name, 'an HTTP header name');
  }
}

function buildRule(check: Check, field: string, r: unknown): RuleModel {
  check.object(field, r);
  const known = ['name', 'match', 'route', 'redirect', 'rewrite', 'timeout', 'retries', 'fault', 'mirror', 'headers'];
  for (const k of Object.keys(r)) if (!known.includes(k)) check.fail(`${field}.${k}`, r[k], `no such rule field (known: ${known.join(', ')})`);
  if ((r.route === undefined) === (r.redirect === undefined)) {
    check.fail(field, { route: r.route === undefined ? undefined : '...', redirect: r.redirect }, 'exactly one of route or redirect');
  }
  const match = r.match === undefined ? [] : (check.array(`${field}.match`, r.match), r.match.map((m, i) => buildMatch(check, `${field}.match[${i}]`, m)));
  const route = r.route === undefined ? [] : buildRoute(check, `${field}.route`, r.route);

  let redirect: HttpRedirect | undefined;
  if (r.redirect !== undefined) {
    const rd = r.redirect;
    check.object(`${field}.redirect`, rd);
    if (rd.uri === undefined && rd.authority === undefined && rd.port === undefined && rd.scheme === undefined) {
      check.fail(`${field}.redirect`, rd, 'at least one of uri, authority, port, scheme');
    }
    if (rd.uri !== undefined && (typeof rd.uri !== 'string' || !rd.uri.startsWith('/'))) check.fail(`${field}.redirect.uri`, rd.uri, 'a path starting with "/"');
    if (rd.authority !== undefined) checkHost(check, `${field}.redirect.authority`, rd.authority);
    if (rd.port !== undefined) check.port(`${field}.redirect.port`, rd.port);
    if (rd.scheme !== undefined) check.oneOf(`${field}.redirect.scheme`, rd.scheme, ['http', 'https']);
    if (rd.redirectCode !== undefined && ![301, 302, 303, 307, 308].includes(rd.redirectCode as number)) {
      check.fail(`${field}.redirect.redirectCode`, rd.redirectCode, 'one of 301, 302, 303, 307, 308');
    }
    if (r.rewrite !== undefined) check.fail(`${field}.rewrite`, r.rewrite, 'no rewrite on a rule that redirects');
    redirect = rd as HttpRedirect;
  }
  if (r.rewrite !== undefined) {
    const rw = r.rewrite;
    check.object(`${field}.rewrite`, rw);
    if (rw.uri === undefined && rw.authority === undefined) check.fail(`${field}.rewrite`, rw, 'at least one of uri, authority');
    if (rw.uri !== undefined && (typeof rw.uri !== 'string' || !rw.uri.startsWith('/'))) check.fail(`${field}.rewrite.uri`, rw.uri, 'a path starting with "/"');
    if (rw.authority !== undefined) checkHost(check, `${field}.rewrite.authority`, rw.authority);
  }

  const timeout = r.timeout === undefined ? undefined : checkDuration(check, `${field}.timeout`, r.timeout);

  let retries: RuleModel['retries'];
  if (r.retries !== undefined) {
    const rt = r.retries;
    check.object(`${field}.retries`, rt);
    check.integer(`${field}.retries.attempts`, rt.attempts, 0, 100);
    const perTryTimeout = rt.perTryTimeout === undefined ? undefined : checkDuration(check, `${field}.retries.perTryTimeout`, rt.perTryTimeout);
    let retryOn: string[] | undefined;
    if (rt.retryOn !== undefined) {
      check.array(`${field}.retries.retryOn`, rt.retryOn, 1);
      retryOn = rt.retryOn.map((c, i) => {
        if (typeof c !== 'string' || !((RETRY_ON as readonly string[]).includes(c) || /^[1-5][0-9][0-9]$/.test(c))) {
          check.fail(`${field}.retries.retryOn[${i}]`, c, `an Envoy retry condition (${RETRY_ON.join(', ')}) or an HTTP status code such as "503"`);
        }
        return c;
      });
    }
    if (timeout && perTryTimeout && perTryTimeout.nanos > timeout.nanos) {
      check.fail(`${field}.retries.perTryTimeout`, perTryTimeout.toIstio(), `at most the rule timeout (${timeout.toIstio()})`);
    }
    retries = { attempts: rt.attempts, perTryTimeout, retryOn };
  }

  let fault: RuleModel['fault'];
  if (r.fault !== undefined) {
    const f = r.fault;
    check.object(`${field}.fault`, f);
    if (f.delay === undefined && f.abort === undefined) check.fail(`${field}.fault`, f, 'a delay, an abort or both');
    let delay: NonNullable<RuleModel['fault']>['delay'];
    let abort: NonNullable<RuleModel['fault']>['abort'];
    if (f.delay !== undefined) {
      check.object(`${field}.fault.delay`, f.delay);
      check.percentage(`${field}.fault.delay.percentage`, f.delay.percentage);
      delay = { fixedDelay: checkDuration(check, `${field}.fault.delay.fixedDelay`, f.delay.fixedDelay), percentage: f.delay.percentage };
    }
    if (f.abort !== undefined) {
      check.object(`${field}.fault.abort`, f.abort);
      check.integer(`${field}.fault.abort.httpStatus`, f.abort.httpStatus, 200, 599);
      check.percentage(`${field}.fault.abort.percentage`, f.abort.percentage);
      abort = { httpStatus: f.abort.httpStatus, percentage: f.abort.percentage };
    }
    fault = { delay, abort };
  }

  let mirror: RuleModel['mirror'];
  if (r.mirror !== undefined) {
    const m = r.mirror;
    check.object(`${field}.mirror`, m);
    checkServiceRef(check, `${field}.mirror.to`, m.to);
    checkTarget(check, `${field}.mirror`, m.to, m.subset, m.port);
    const percentage = m.percentage === undefined ? 100 : m.percentage;
    check.percentage(`${field}.mirror.percentage`, percentage);
    mirror = { to: m.to, subset: m.subset as string | undefined, port: m.port as number | undefined, percentage };
  }

  if (r.headers !== undefined) {
    check.object(`${field}.headers`, r.headers);
    headerOps(check, `${field}.headers.request`, r.headers.request);
    headerOps(check, `${field}.headers.response`, r.headers.response);
    const headers = r.headers as HttpHeaders;
    const [p] = hostHeaderProblems(headers, (r.rewrite as HttpRewrite | undefined)?.authority);
    if (p?.kind === 'removed') check.fail(`${field}.headers.request.remove`, p.name, 'a header other than Host (Istio refuses to remove Host; change it with rewrite.authority)');
    if (p?.kind === 'on-response') check.fail(`${field}.headers.response.${p.op}`, p.name, 'a header other than Host (a response has no Host header)');
    if (p?.kind === 'set-twice') check.fail(`${field}.headers.request`, headers.request, 'Host set once: by rewrite.authority or one set/add entry, not several');
  }
  if (r.name !== undefined) check.nonEmptyString(`${field}.name`, r.name);

  return {
    name: r.name as string | undefined,
    match,
    route,
    redirect,
    rewrite: r.rewrite as HttpRewrite | undefined,
    timeout,
    retries,
    fault,
    mirror,
    headers: r.headers as HttpHeaders | undefined,
  };
}

/**
 * Validate and normalize host rules. Throws MeshValidationError naming `where`
 * (a construct path), the field, the value and what was expected.
 */
export function buildTrafficRoute(where: string, spec: TrafficRouteSpec): TrafficRouteModel {
  const check: Check = new Check(where);
  check.object('props', spec);
  check.array('hosts', spec.hosts, 1);
  spec.hosts.forEach((h, i) => {
    if (typeof h === 'string') checkHost(check, `hosts[${i}]`, h);
    else if (typeof h !== 'object' || h === null || typeof (h as ServiceRef).serviceName !== 'string') {
      check.fail(`hosts[${i}]`, h, 'a host name such as "reviews" or "shop.example.com", or a service object (a MeshWorkload, CanaryRelease, WebTier front or externalHost(...))');
    }
  });
  const gateways = spec.gateways ?? [];
  check.array('gateways', gateways);
  gateways.forEach((g, i) => {
    if (typeof g !== 'string' || !(g === 'mesh' || /^([a-z0-9-]+\/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9-]+)*$/.test(g))) {
      check.fail(`gateways[${i}]`, g, '"mesh", a Gateway name or "namespace/name"');
    }
  });
  if (gateways.length === 0 && spec.hosts.some((h) => h === '*')) {
    check.fail('hosts', spec.hosts, 'a host other than "*" for mesh rules ("*" is only valid with a gateway)');
  }
  check.array('http', spec.http, 1);
  const http = spec.http.map((r, i) => buildRule(check, `http[${i}]`, r));
  // A catch-all rule before other rules makes them dead code: almost always a mistake.
  const catchAll = http.findIndex((r) => r.match.length === 0);
  if (catchAll >= 0 && catchAll < http.length - 1) {
    check.fail(`http[${catchAll}].match`, 'none (matches every request)', `a match condition, or this rule moved last (rules after it can never match)`);
  }
  return { hosts: spec.hosts, gateways, http };
}

