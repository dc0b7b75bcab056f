// Preloaded with `node --import` by core-imports.test.ts: appends every module node resolves,
// from `import` (through a resolve hook) and from `require` (through the CommonJS resolver), to
// the file named by KILO_LOAD_LOG, one `<specifier>\t<resolved>` line each.
import { appendFileSync } from "node:fs";
import Module, { register } from "node:module";

const log = process.env.KILO_LOAD_LOG;
if (!log) throw new Error("record-loads.mjs needs KILO_LOAD_LOG");

const hooks = `
import { appendFileSync } from "node:fs";
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(log, specifier + "\\t" + resolved.url + "\\n");
  return resolved;
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { log } });

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function recordResolve(request, ...rest) {
  const resolved = resolveFilename.call(this, request, ...rest);
  appendFileSync(log, `${request}\t${resolved}\n`);
  return resolved;
};
