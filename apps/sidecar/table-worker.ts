// Route-table reloads checked off the request path: a worker thread reads the file, refuses
// it when it is over the size limit, parses and validates it, and hands back the text that
// passed. The main thread then parses that text once more (no validation) and compiles it:
// what stays on the event loop is JSON.parse and the index build, not the schema check
// (measured with bench/reload.ts: see the README's proxy section).
import { readFileSync, statSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { RouteTable } from '../../model/route-table';
import { ConfigError, parseRouteTable } from './table';

const ROLE = 'mesh-proxy-table-check';

/** The file's text, refused before it is read when it is over `maxBytes`. */
export function readTableFile(path: string, maxBytes: number): string {
  const size = statSync(path).size;
  if (size > maxBytes) throw new ConfigError(`${path}: ${size} bytes; route tables over ${maxBytes} bytes are refused (--max-table-bytes)`);
  return readFileSync(path, 'utf8');
}

/** A table that passed, or why not (with the text when it could be read, so the same text is refused once). */
export type CheckedTable = ({ readonly text: string; readonly table: RouteTable } | { readonly error: string; readonly text?: string }) & {
  /** Where the file was read and validated (the log says it). */
  readonly checkedIn?: 'worker' | 'main thread';
};

/** The same check in this thread (start-up, and where no worker can be started). */
function checkHere(path: string, maxBytes: number): CheckedTable {
  let text: string | undefined;
  try {
    text = readTableFile(path, maxBytes);
    return { text, table: parseRouteTable(text, path) };
  } catch (e) {
    return { error: e instanceof ConfigError ? e.message : String(e), text };
  }
}

/**
 * Read and check the table in a worker thread (started for this one check, then ended), and
 * parse the text that passed here. Falls back to checking in this thread when the worker
 * cannot run (the proxy started from its TypeScript sources rather than the bundle).
 */
export function checkTable(path: string, maxBytes: number, timeoutMs = 30_000): Promise<CheckedTable> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = new Worker(__filename, { workerData: { role: ROLE, path, maxBytes } });
    } catch {
      resolve({ ...checkHere(path, maxBytes), checkedIn: 'main thread' });
      return;
    }
    let settled = false;
    const settle = (r: CheckedTable | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(r ? { ...r, checkedIn: 'worker' } : { ...checkHere(path, maxBytes), checkedIn: 'main thread' });
    };
    const timer = setTimeout(() => settle({ error: `${path}: the check did not finish within ${timeoutMs} ms` }), timeoutMs);
    worker.once('message', (m: { text?: string; error?: string }) => {
      if (m.error !== undefined) { settle({ error: m.error, text: m.text }); return; }
      // Validated in the worker: here only the parse the request path needs.
      try {
        settle({ text: m.text!, table: JSON.parse(m.text!) as RouteTable });
      } catch (e) {
        settle({ error: String(e), text: m.text });
      }
    });
    // A worker that cannot load this file (not the bundle): check here instead.
    worker.once('error', () => settle(undefined));
    worker.once('exit', () => settle(undefined));
  });
}

/** In a worker started by checkTable: do the check and answer. True when this thread is such a worker. */
export function runTableWorker(): boolean {
  if (isMainThread || (workerData as { role?: string } | undefined)?.role !== ROLE) return false;
  const { path, maxBytes } = workerData as { path: string; maxBytes: number };
  const r = checkHere(path, maxBytes);
  parentPort!.postMessage('table' in r ? { text: r.text } : r);
  return true;
}
