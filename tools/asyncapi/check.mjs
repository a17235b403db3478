// Validates an AsyncAPI document with the AsyncAPI initiative's parser (offline: its $refs are
// files beside it). Prints the diagnostics as JSON lines; exits 1 if any is an error.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const path = resolve(process.argv[2]);
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors += 1;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (document) {
  const payloads = {};
  for (const message of document.allMessages()) {
    const properties = message.payload()?.properties() ?? {};
    payloads[message.name()] = Object.keys(properties).sort();
  }
  console.log(JSON.stringify({
    channels: document.channels().all().map((c) => c.address()).sort(),
    operations: document.operations().length,
    payloads,
  }));
}
process.exit(errors || !document ? 1 : 0);
