// A backend that records the exact bytes it receives and parses them strictly with Node's
// own llhttp (no lenient flags): what a smuggling test needs to see is how many requests the
// bytes make, not what a forgiving server would make of them.
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import { HTTPParser as UpstreamParser } from '../../apps/sidecar/upstream';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  close(): void;
  [callback: number]: unknown;
}
// The binding the proxy's upstream client loads (and checks the shape of), here as a request parser.
const HTTPParser = UpstreamParser as unknown as { new(): Parser; REQUEST: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { methods } = require('_http_common') as { methods: string[] };

export interface RawRequest { method: string; url: string; headers: string[]; body: string }

export interface RawConnection {
  /** Every byte received, as latin1. */
  bytes: string;
  /** Whole requests parsed from them, in order. */
  readonly requests: RawRequest[];
  /** The parser's error, when the bytes stopped being HTTP. */
  error?: string;
}

export interface RawBackend {
  readonly port: number;
  readonly connections: RawConnection[];
  /** Every request on every connection. */
  requests(): RawRequest[];
  close(): Promise<void>;
}

/**
 * Answers each parsed request with 200 and a body naming the request (`method url`), so a
 * client that got someone else's response can tell. `respond` may answer otherwise.
 */
export async function rawBackend(respond?: (r: RawRequest, sock: net.Socket) => string | undefined): Promise<RawBackend> {
  const connections: RawConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    const conn: RawConnection = { bytes: '', requests: [] };
    connections.push(conn);
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, 64 * 1024, 0);
    let current: RawRequest | undefined;
    let pending: string[] = [];
    p[HTTPParser.kOnHeaders] = (h: string[]) => { pending.push(...h); };
    p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, method: number, url: string | undefined) => {
      current = { method: methods[method], url: url ?? '', headers: headers ?? pending, body: '' };
      pending = [];
      return 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer) => { if (current) current.body += b.toString('latin1'); };
    p[HTTPParser.kOnMessageComplete] = () => {
      if (!current) return;
      conn.requests.push(current);
      const r = current;
      current = undefined;
      const answer = respond?.(r, sock);
      if (answer !== undefined) { sock.write(answer); return; }
      const body = `${r.method} ${r.url}`;
      sock.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    };
    sock.on('data', (d: Buffer) => {
      conn.bytes += d.toString('latin1');
      if (conn.error) return;
      const r = p.execute(d);
      if (typeof r === 'object') { conn.error = String((r as Error & { code?: string }).code ?? r); sock.destroy(); }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => { sockets.delete(sock); p.close(); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    requests: () => connections.flatMap((c) => c.requests),
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
