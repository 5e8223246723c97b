// The Grafana dashboard parses, and every metric its queries name is one
// docs/metrics.md documents (so a renamed metric fails here, not on a wall).
//   node dashboard_test.mjs DASHBOARD_JSON METRICS_MD
import { readFileSync } from 'node:fs';

const [dashboardFile, docFile] = process.argv.slice(2);
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8'));
const doc = readFileSync(docFile, 'utf8');
const documented = new Set([...doc.matchAll(/`(secbox_[a-z_]+)/g)].map((m) => m[1]));
let problems = 0;
if (!Array.isArray(dashboard.panels) || dashboard.panels.length === 0) {
  console.error('the dashboard has no panels');
  process.exit(1);
}
for (const panel of dashboard.panels) {
  for (const target of panel.targets ?? []) {
    for (const [name] of target.expr.matchAll(/secbox_[a-z_]+/g)) {
      if (!documented.has(name)) {
        console.error(`panel "${panel.title}": ${name} is not in ${docFile}`);
        problems += 1;
      }
    }
  }
}
console.log(`${dashboard.panels.length} panels checked, ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
