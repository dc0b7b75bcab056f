/**
 * kilo's HTTP API as a Web-standard handler, plus an adapter for `node:http`
 * (and so Express, Connect and Fastify raw routes), the API's OpenAPI 3.1
 * document, and kilo studio, the browser app over the API (`studio: true`).
 * See `docs/http.md` and `docs/studio.md`.
 *
 * @module kilo/http
 */

export type { StudioOptions } from "../studio/studio-handler.js";
export type { HttpHandler, HttpHandlerOptions, HttpPrincipal, WebhookReceiver } from "./http-handler.js";
export { createHttpHandler, DEFAULT_MAX_BODY_BYTES } from "./http-handler.js";
export type { HttpErrorBody, HttpErrorCode } from "./http-response.js";
export type { NodeHandler, NodeHandlerOptions, WebHandler } from "./node.js";
export { toNodeHandler } from "./node.js";
export type { JsonSchema, OpenApiDocument, OpenApiOptions } from "./openapi-document.js";
export { openApiDocument } from "./openapi-document.js";
