#!/usr/bin/env bash
# npm run bench:setup — installs the benchmark's peers, none of which `npm ci` pays for:
#   - nginx-light and wrk from Debian's packages (apt-get), when missing;
#   - the Portkey gateway into bench/peers/node_modules from bench/peers/package-lock.json
#     (@hono/node-server pinned to 1.14.1 there: 1.14.2+ breaks Portkey's streaming).
# Without them `npm run bench` still runs, and says which peers were absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "bench:setup: cannot install ${missing[*]} (needs root and apt-get); the bench will run without them" >&2
  else
    echo "bench:setup: installing ${missing[*]} (apt-get)" >&2
    # Keep the package's own nginx service from starting (port 80 on every interface): the
    # bench runs its own nginx under a temp dir, bound to 127.0.0.1.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
    fi
    trap 'if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi' EXIT
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

echo "bench:setup: installing the Portkey gateway in bench/peers (npm ci)" >&2
npm ci --prefix bench/peers --no-audit --no-fund --ignore-scripts --loglevel=error
echo "bench:setup: done (nginx: $(command -v nginx || echo absent), wrk: $(command -v wrk || echo absent))" >&2
