'use strict';
// The first step of every npm script that needs a recent Node (package.json): `node
// scripts/require-node.cjs 24` exits 0 when the Node running it is at least 24, and otherwise
// prints one line saying what to run and exits 1 — before a newer-Node-only feature fails with a
// message that names neither (`ERR_UNKNOWN_FILE_EXTENSION ".ts"` for type stripping, `bad option:
// --test-global-setup`). Plain CommonJS and old syntax on purpose: it has to run on the old Node.

var REMEDY = '. deploy/local/node.sh';

function parse(version) {
  var parts = String(version).replace(/^v/, '').split('.');
  return [Number(parts[0]) || 0, Number(parts[1]) || 0, Number(parts[2]) || 0];
}

function atLeast(have, need) {
  for (var i = 0; i < 3; i++) {
    if (have[i] !== need[i]) return have[i] > need[i];
  }
  return true;
}

var wanted = process.argv[2];
if (wanted === undefined || !/^\d+(\.\d+){0,2}$/.test(wanted)) {
  process.stderr.write('scripts/require-node.cjs: usage: node scripts/require-node.cjs MAJOR[.MINOR[.PATCH]]\n');
  process.exit(2);
}

if (!atLeast(parse(process.versions.node), parse(wanted))) {
  // npm names the script it runs; outside npm the check speaks for itself.
  var script = process.env.npm_lifecycle_event;
  var what = script === undefined ? 'this needs' : script === 'test' || script === 'start' ? 'npm ' + script + ' needs' : 'npm run ' + script + ' needs';
  process.stderr.write(what + ' Node >= ' + wanted + ', but this shell runs Node ' + process.versions.node + ' (' + process.execPath + '): run `' + REMEDY + '` first (it puts Node 24 on PATH, installing it when missing), then run the command again.\n');
  process.exit(1);
}
