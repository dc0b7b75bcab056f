// The studio's calls to kilo's HTTP API. The page lives at `<mount>/studio/`, so the API is at
// `<mount>/`: URLs are relative to that, whatever the mount path. Credentials are what the browser
// sends by itself (the host's session cookie, or HTTP auth it prompted for); nothing is stored here.

/** An error answer of the API: its status and the `{ error: { code, message } }` it carried. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Receives one Server-Sent Events frame. */
export type FrameHandler = (event: string, data: unknown) => void;

/** The API, as the views use it. Paths are relative to the mount, e.g. `api/me`. */
export interface Api {
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  patch<T>(path: string, body: unknown): Promise<T>;
  /** POSTs `body` and hands each Server-Sent Events frame of the answer to `onFrame`, until the stream ends. */
  stream(path: string, body: unknown, onFrame: FrameHandler): Promise<void>;
  /** Called with every 401, so the page can say the user must sign in again. */
  onUnauthenticated?: () => void;
}

async function failure(response: Response): Promise<ApiError> {
  let code = "HTTP_ERROR";
  let message = `The server answered ${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // Not the API's JSON error shape (a proxy's page, say): keep the status line.
  }
  return new ApiError(response.status, code, message);
}

/** Splits a Server-Sent Events text into complete frames; returns the unfinished rest. */
export function parseFrames(buffer: string, onFrame: FrameHandler): string {
  const frames = buffer.split("\n\n");
  const rest = frames.pop() ?? "";
  for (const frame of frames) {
    let event = "message";
    const data: string[] = [];
    for (const line of frame.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length === 0) continue;
    onFrame(event, JSON.parse(data.join("\n")) as unknown);
  }
  return rest;
}

/** The API under `base` (the mount: the studio page's parent URL). */
export function createApi(base: URL): Api {
  const api: Api = {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body ?? {}),
    patch: (path, body) => call("PATCH", path, body),
    async stream(path, body, onFrame) {
      const response = await send("POST", path, body, "text/event-stream");
      if (!response.body) throw new ApiError(response.status, "HTTP_ERROR", "The stream had no body");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer = parseFrames(buffer + value.replace(/\r\n/g, "\n"), onFrame);
      }
      parseFrames(`${buffer}\n\n`, onFrame);
    },
  };

  async function send(method: string, path: string, body: unknown, accept: string): Promise<Response> {
    const response = await fetch(new URL(path, base), {
      method,
      headers: {
        accept,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.ok) return response;
    if (response.status === 401) api.onUnauthenticated?.();
    throw await failure(response);
  }

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await send(method, path, body, "application/json");
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  return api;
}

/** `path?name=value&...`, leaving out empty values. */
export function withQuery(path: string, query: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

/** A path segment: an id, escaped. */
export const segment = (id: string) => encodeURIComponent(id);
