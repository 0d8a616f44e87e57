#!/usr/bin/env node
import '../dist/podtables.mjs';
