#!/usr/bin/env bash
# Runs every check and test suite of the repo and ends with one summary line:
#   "total: N passed, N failed, N skipped"
# Each suite runs even if an earlier one failed; the exit code is non-zero if anything failed.
# MEMLENS_SUITES="unit lsp" limits the run to the named suites (see SUITES below).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT
passed=0 failed=0 skipped=0
failed_names=()

bash scripts/install-deps.sh || { echo "install-deps failed"; echo "total: 0 passed, 1 failed"; exit 1; }

suite_started=$SECONDS
record() { # name passed failed skipped
  passed=$((passed + $2)) failed=$((failed + $3)) skipped=$((skipped + $4))
  ((${3} > 0)) && failed_names+=("$1")
  printf '\n== %s: %d passed, %d failed, %d skipped (%d s)\n\n' "$1" "$2" "$3" "$4" $((SECONDS - suite_started))
  suite_started=$SECONDS
}

# A check (build, typecheck, lint) counts as one test.
check() { # name command...
  local name=$1
  shift
  echo "== $name: $*"
  if "$@"; then record "$name" 1 0 0; else record "$name" 0 1 0; fi
}

# node:test suites: spec output to the console, TAP to a file we count from.
node_suite() { # name files...
  local name=$1
  shift
  local files=()
  for f in "$@"; do [[ -f $f ]] && files+=("$f"); done
  if ((${#files[@]} == 0)); then
    echo "== $name: no test files"
    return
  fi
  echo "== $name: ${#files[@]} files"
  local tap="$RESULTS/$name.tap"
  node --import tsx --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "${files[@]}"
  local rc=$?
  local p f s c
  p=$(grep -E '^# pass ' "$tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail ' "$tap" | tail -1 | awk '{print $3}')
  s=$(grep -E '^# skipped ' "$tap" | tail -1 | awk '{print $3}')
  c=$(grep -E '^# cancelled ' "$tap" | tail -1 | awk '{print $3}')
  p=${p:-0} f=${f:-0} s=${s:-0} c=${c:-0}
  f=$((f + c))
  if ((rc != 0 && f == 0)); then f=1; fi
  record "$name" "$p" "$f" "$s"
}

pytest_suite() { # name dir
  local name=$1 dir=$2
  echo "== $name: $dir"
  local log="$RESULTS/$name.log"
  /usr/bin/python3 -m pytest "$dir" -q -p no:cacheprovider 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line p f s e
  line=$(grep -E '^=*.*(passed|failed|error|skipped|no tests ran)' "$log" | tail -1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}')
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}')
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | awk '{print $1}')
  s=$(grep -oE '[0-9]+ skipped' <<<"$line" | awk '{print $1}')
  p=${p:-0} f=$((${f:-0} + ${e:-0})) s=${s:-0}
  # Exit 5 is "no tests collected": a suite that ran nothing is a failure here.
  if ((rc != 0 && f == 0)); then f=1; fi
  record "$name" "$p" "$f" "$s"
}

SUITES=${MEMLENS_SUITES:-"build lint unit probe lsp dap remote webview e2e bench"}
has() { [[ " $SUITES " == *" $1 "* ]]; }

if has build; then
  check build npm run --silent build
  check typecheck npx tsc --noEmit -p .
fi
if has lint; then
  check eslint npx eslint .
  check prettier npx prettier --check .
  check black-probe black --check --quiet python-probe
  check black-scripts black --check --quiet scripts/vllm
fi
has unit && node_suite unit $(find test/unit -name '*.test.ts' | sort)
has probe && pytest_suite probe python-probe/tests
has lsp && node_suite lsp $(find test/lsp -name '*.test.ts' 2>/dev/null | sort)
has dap && node_suite dap $(find test/dap -name '*.test.ts' 2>/dev/null | sort)
has remote && node_suite remote $(find test/remote -name '*.test.ts' 2>/dev/null | sort)
has webview && node_suite webview $(find test/webview -name '*.test.ts' 2>/dev/null | sort)
if has e2e; then
  bash scripts/setup-code-server.sh >/dev/null || record e2e-setup 0 1 0
  node_suite e2e $(find test/e2e -name '*.test.ts' 2>/dev/null | sort)
fi
if has bench; then
  # Benchmarks print figures; they count as a check only in that they must run to the end.
  [[ -f scripts/bench-panel.ts ]] && check bench-panel node --import tsx scripts/bench-panel.ts
  [[ -f python-probe/scripts/bench_probe.py ]] && check bench-probe python3 python-probe/scripts/bench_probe.py --cpu-only --out test-results/bench-probe
fi

if ((${#failed_names[@]})); then echo "failed suites: ${failed_names[*]}"; fi
echo "total: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
