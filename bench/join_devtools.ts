/**
 * A Chrome DevTools Protocol client over one WebSocket, for the dev tools
 * that profile a V8 isolate through its inspector (`bench/join_inspect.ts`,
 * `bench/profile_edge.ts`).
 *
 * @module
 */

/** A CDP session: `call` sends a method and resolves with its result. */
export interface DevtoolsSession {
  /** Sends `method` with `params`; resolves with the result. */
  call<T>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** Closes the socket. */
  close(): void;
}

/** Opens a CDP session on the inspector WebSocket at `url`. */
export async function devtools(url: string): Promise<DevtoolsSession> {
  const ws = new WebSocket(url);
  await new Promise((opened, failed) => {
    ws.onopen = opened;
    ws.onerror = failed;
  });
  let next = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  };
  return {
    call: <T>(method: string, params = {}) =>
      new Promise<T>((done) => {
        pending.set(++next, done as (result: unknown) => void);
        ws.send(JSON.stringify({ id: next, method, params }));
      }),
    close: () => ws.close(),
  };
}
