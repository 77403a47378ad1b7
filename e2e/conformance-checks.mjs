#!/usr/bin/env node
// Reads the checks.json that `conformance server -o DIR` wrote for one scenario
// and decides it: exit 0 when there is at least one SUCCESS and no FAILURE,
// 1 otherwise. Prints one summary line, then one line per FAILURE or WARNING.
//
//   node conformance-checks.mjs <scenario> <checks.json>

import { readFileSync } from "node:fs";

const [scenario, file] = process.argv.slice(2);
if (!scenario || !file) {
  console.error("usage: conformance-checks.mjs <scenario> <checks.json>");
  process.exit(2);
}
let checks;
try {
  checks = JSON.parse(readFileSync(file, "utf8"));
} catch (err) {
  console.log(`${scenario}: cannot read ${file}: ${err.message}`);
  process.exit(1);
}
if (!Array.isArray(checks)) {
  console.log(`${scenario}: ${file} is not an array of checks`);
  process.exit(1);
}
const count = (s) => checks.filter((c) => c.status === s).length;
const success = count("SUCCESS"), failure = count("FAILURE"), warning = count("WARNING");
console.log(`${scenario}: ${success} SUCCESS, ${failure} FAILURE, ${warning} WARNING, ${checks.length - success - failure - warning} other`);
for (const c of checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING")) {
  const details = c.details ? ` ${JSON.stringify(c.details).slice(0, 300)}` : "";
  console.log(`    ${c.status} ${c.id}: ${c.errorMessage ?? c.description ?? ""}${details}`);
}
// A scenario with no SUCCESS at all tested nothing (e.g. it needs a fixture tool).
process.exit(failure === 0 && success > 0 ? 0 : 1);
