// Client connections: the downstream cap, which connection gives way at the cap, and one
// request at a time per connection.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Pipelined requests that may wait, all connections together. Node parses a whole read
 * (64 KiB: up to ~2,500 tiny requests) before a connection can be paused, and a waiting
 * request holds ~1 KB until it is served: 300 connections pipelining 963 GETs each to a
 * slow backend are 290,000 of them. Past this budget the connection whose request overran it
 * is closed, its waiting requests dropped (garbage, not live memory). One client's 3,000-deep
 * pipeline fits.
 */
export const DEFAULT_MAX_PIPELINED = 10_000;

/** Sockets accepted beyond the downstream connection limit: their requests get a 503. */
export const OVERLOADED = Symbol('mesh-proxy overloaded socket');

/**
 * Node's http.Server keeps these on its sockets: `_paused` is how it stops reading a client
 * whose responses back up (it pauses the parser after the chunk it is executing), `parser`
 * the connection's parser. Used here the same way, for pipelined requests.
 */
interface ServerSocket extends Socket {
  _paused?: boolean;
  parser?: { pause(): void; resume(): void } | null;
  [OVERLOADED]?: boolean;
}

interface ConnectionState {
  /** A request of this connection is being served. */
  busy: boolean;
  /** Pipelined requests that arrived while one was served, in order. */
  readonly waiting: Array<{ res: ServerResponse; serve: () => void }>;
}

/**
 * Downstream connections as Envoy's HTTP/1 codec and overload manager treat them:
 * - Pipelined requests are served one at a time, in order: the next one starts when the
 *   previous response has ended, and the connection is not read further while one waits
 *   (Node's parser would otherwise hand over every request of a 64 KiB read at once, and
 *   each would open its own upstream connection).
 * - At the connection cap, the keep-alive connection idle longest (answered, no request in
 *   flight) is closed to make room; only when none is idle does a new one get 503.
 */
export class Downstream {
  private readonly sockets = new Map<Socket, ConnectionState>();
  /** Connections with no request in flight, the longest idle first (a Set keeps insertion order). */
  private readonly idle = new Set<Socket>();
  /**
   * @param overflow told of each connection closed by a limit: `downstream_idle_closed` (an
   * idle one made room at the cap) or `pipelined_requests` (the waiting budget, `maxPipelined`, overrun)
   */
  constructor(
    private readonly maxConnections: number,
    private readonly overflow: (limit: string) => void = () => undefined,
    private readonly maxPipelined = DEFAULT_MAX_PIPELINED,
  ) {}

  /** Requests waiting behind another on their connection, all connections together. */
  private waiting = 0;

  /** Connections served (not told 503 for the cap), the ones still open. */
  private served = 0;

  get size(): number { return this.sockets.size; }

  /** A new connection (the server's 'connection' event). At the cap: close an idle one, or mark this one overloaded. */
  accept(sock: Socket): void {
    // The cap counts served connections only: an overloaded one is answered 503 and closed,
    // and must neither take a served one's place nor make room for the next.
    if (this.served >= this.maxConnections) {
      const victim = this.idle.values().next().value as Socket | undefined;
      if (victim) {
        this.overflow('downstream_idle_closed');
        this.forget(victim);
        victim.destroy();
      } else {
        (sock as ServerSocket)[OVERLOADED] = true;
      }
    }
    if (!(sock as ServerSocket)[OVERLOADED]) this.served++;
    // Not idle yet: a connection becomes a candidate once it has been answered and waits for
    // its next request (a new one still sending its head has the header timeout).
    this.sockets.set(sock, { busy: false, waiting: [] });
    sock.once('close', () => this.forget(sock));
  }

  private forget(sock: Socket): void {
    const st = this.sockets.get(sock);
    if (!st) return;
    this.waiting -= st.waiting.length;
    st.waiting.length = 0;
    this.sockets.delete(sock);
    this.idle.delete(sock);
    if (!(sock as ServerSocket)[OVERLOADED]) this.served--;
  }

  /**
   * Run `serve` for a request of `sock` now, or once the requests before it on the same
   * connection have been answered. `res` closing (answered, or the client gone) lets the
   * next one start.
   */
  run(sock: Socket, res: ServerResponse, serve: () => void): void {
    let st = this.sockets.get(sock);
    if (!st) {
      // Not seen by accept() (a server without the 'connection' hook): serve as it comes.
      st = { busy: false, waiting: [] };
      this.sockets.set(sock, st);
      if (!(sock as ServerSocket)[OVERLOADED]) this.served++;
      sock.once('close', () => this.forget(sock));
    }
    const state = st;
    if (!state.busy) {
      state.busy = true;
      this.idle.delete(sock);
      this.start(sock, state, res, serve);
      return;
    }
    if (this.waiting >= this.maxPipelined) {
      // Counted once per connection: Node still hands over the rest of the read it is parsing.
      if (!sock.destroyed) this.overflow('pipelined_requests');
      this.waiting -= state.waiting.length;
      state.waiting.length = 0;
      sock.destroy();
      return;
    }
    this.waiting++;
    state.waiting.push({ res, serve });
    const s = sock as ServerSocket;
    if (!s._paused) {
      // Stop reading: Node pauses the parser after the chunk it is on when it sees _paused.
      s._paused = true;
      s.pause();
    }
  }

  private start(sock: Socket, state: ConnectionState, res: ServerResponse, serve: () => void): void {
    res.once('close', () => this.done(sock, state));
    serve();
  }

  private take(state: ConnectionState): ConnectionState['waiting'][number] | undefined {
    const next = state.waiting.shift();
    if (next) this.waiting--;
    return next;
  }

  private done(sock: Socket, state: ConnectionState): void {
    // Reading resumes whatever comes next: the next request's body may still be on its way
    // (its IncomingMessage does not resume a socket Node marked _paused), and a request that
    // arrives while it is served is queued again, which pauses again.
    const s = sock as ServerSocket;
    if (s._paused) {
      s._paused = false;
      s.parser?.resume();
      s.resume();
    }
    // Requests whose connection has gone meanwhile are not started (nothing is sent upstream for them).
    let next = this.take(state);
    while (next && (next.res.destroyed || sock.destroyed)) next = this.take(state);
    if (next) { this.start(sock, state, next.res, next.serve); return; }
    state.busy = false;
    // Idle means waiting for a next request: not a connection told 503 for the cap, nor one
    // whose answer said `connection: close` (its end is already written; it closes by itself).
    if (this.sockets.has(sock) && !sock.destroyed && !sock.writableEnded && !(sock as ServerSocket)[OVERLOADED]) {
      // Re-inserted: now the most recently idle.
      this.idle.delete(sock);
      this.idle.add(sock);
    }
  }
}
