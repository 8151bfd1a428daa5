/**
 * The downstream connection cap (apps/sidecar/downstream.ts), driven event by event with
 * stand-in sockets so that the orderings a loaded proxy meets only now and then are the
 * test's: a connection told 503 for the cap, still closing, when the next one arrives.
 */
import { EventEmitter } from 'events';
import type { ServerResponse } from 'http';
import type { Socket } from 'net';
import { Downstream, OVERLOADED } from '../apps/sidecar/downstream';

class FakeSocket extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  destroy() { if (!this.destroyed) { this.destroyed = true; this.emit('close'); } return this; }
  pause() { return this; }
  resume() { return this; }
  get overloaded() { return (this as unknown as Record<symbol, boolean>)[OVERLOADED] === true; }
}
class FakeResponse extends EventEmitter { destroyed = false; }

function harness(max: number) {
  const limits: string[] = [];
  const down = new Downstream(max, (l) => limits.push(l));
  /** A connection that sends one request; `answer` ends it as the proxy would. */
  const connect = () => {
    const sock = new FakeSocket();
    down.accept(sock as unknown as Socket);
    const res = new FakeResponse();
    let served = false;
    down.run(sock as unknown as Socket, res as unknown as ServerResponse, () => { served = true; });
    return {
      sock, res, served: () => served,
      /** The response is written; `close` says `connection: close` (Node ends the socket before the response's 'close'). */
      answer(close = false) { if (close) sock.writableEnded = true; res.emit('close'); },
    };
  };
  return { down, limits, connect };
}

describe('downstream connection cap', () => {
  test('a connection told 503 for the cap, still closing, does not make room for the next one', () => {
    const { connect, limits } = harness(2);
    const a = connect();
    const b = connect();
    const over = connect();
    expect([a.sock.overloaded, b.sock.overloaded, over.sock.overloaded]).toEqual([false, false, true]);
    over.answer(true); // the 503, `connection: close`: the socket is ending but not yet closed
    const next = connect();
    // Before the fix the closing 503 connection counted as idle: it was closed to make room and
    // the newcomer was served, one more than the cap (1,025 of 1,024 in the 4,000-client test).
    expect(next.sock.overloaded).toBe(true);
    expect(over.sock.destroyed).toBe(false);
    expect(limits).toEqual([]);
  });

  test('overloaded connections neither count towards the cap nor free a place when they close', () => {
    const { connect } = harness(2);
    connect();
    const b = connect();
    const overs = [connect(), connect(), connect()];
    for (const o of overs) { o.answer(true); o.sock.destroy(); }
    expect(connect().sock.overloaded).toBe(true); // two served ones still busy
    b.res.emit('close');
    b.sock.destroy(); // a served connection goes: its place is free
    expect(connect().sock.overloaded).toBe(false);
    expect(connect().sock.overloaded).toBe(true);
  });

  test('at the cap the keep-alive connection idle longest is closed for the newcomer', () => {
    const { connect, limits } = harness(2);
    const a = connect();
    const b = connect();
    a.answer();
    b.answer();
    const c = connect();
    expect(c.sock.overloaded).toBe(false);
    expect([a.sock.destroyed, b.sock.destroyed]).toEqual([true, false]);
    expect(limits).toEqual(['downstream_idle_closed']);
  });

  test('a served connection answered with `connection: close` is not idle: the newcomer gets 503, and its place frees when it closes', () => {
    const { connect, limits } = harness(1);
    const a = connect();
    a.answer(true);
    const b = connect();
    expect(b.sock.overloaded).toBe(true);
    expect(a.sock.destroyed).toBe(false);
    a.sock.destroy();
    expect(connect().sock.overloaded).toBe(false);
    expect(limits).toEqual([]);
  });
});
