#!/usr/bin/env node
// the published entry: dist/ is built by `npm run build` (and by npm ci / npm install, through prepare)
require("../dist/podtables.cjs");
