#!/usr/bin/env bash
# On the GPU host, after gpu-install.sh: real vLLM loads of gpt-oss-20b, plain and under MemLens
# (its own runner: `memlens run`, the code path of "Measure here"), one scenario per argument.
#   bash scripts/vllm/gpu-run.sh OUT_DIR SCENARIO...
# Scenarios:
#   plain-marlin | plain-auto                 vLLM alone (moe_backend marlin / vLLM's choice)
#   probed-marlin | probed-auto               under MemLens, every catalog hotspot probed
#   truth-marlin                              probed + torch's memory history, then check_truth.py
#   emu16 | emu15.5 | emu16-u0.96             probed, marlin, emulating a 16 / 15.5 GiB card (-uU: that
#                                             gpu_memory_utilization instead of 0.98)
#   dap-step                                  the debug adapter steps through the load (dap-step.mjs)
#   bench-startupN                            N plain and N probed LLM(...) start-ups (eager, marlin),
#                                             alternating; prints each and the ratio of the medians
#   bench-partsN                              N rounds of: plain, probed without allocation sites,
#                                             probed as by default (sites of each target's first 2
#                                             calls), probed with sites of every call (--sites-calls 0)
#   plain-compile | probed-compile            default mode (torch.compile + CUDA graphs), one generate
#   NAME-tpN                                  any of the above with tensor_parallel_size N (one worker
#                                             process per GPU), e.g. truth-marlin-tp2, probed-auto-tp2
#   save-jit-cache                            FlashInfer/Triton/vLLM kernel caches to OUT_DIR/jitcache.part-*
#                                             (carry them back as .whl/jitcache: a fresh host then skips
#                                             minutes of kernel compilation on its first start)
# Each scenario leaves OUT_DIR/NAME.tar.gz: its log, its run folder (events.jsonl.gz, meta.json,
# plan.json, an OOM's allocator snapshot oom-PID-N.pickle) and, for truth runs, truth.json. Probed runs
# print `memlens sites` of the run (the conversion hotspots record their allocation sites by default).
# MEMLENS_CLI (default .devdist/cli.js, else dist/cli.js) is the MemLens CLI bundle to use.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?OUT_DIR}
shift
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/node/bin:$PATH
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 PYTHONUNBUFFERED=1
CLI=${MEMLENS_CLI:-.devdist/cli.js}
[[ -f $CLI ]] || CLI=dist/cli.js
LOAD=scripts/vllm/load_gpt_oss.py
FORWARD_PROBE=${MEMLENS_FORWARD_PROBE:-vllm.model_executor.models.gpt_oss:MLPBlock.forward}

no_gpu_leftovers() {
  # Processes on this scenario's GPUs only (CUDA_VISIBLE_DEVICES, else all): on a host shared by two
  # scenarios at once, the other GPU's processes are not this one's leftovers.
  local left uuids
  uuids=$(nvidia-smi --query-gpu=index,uuid --format=csv,noheader 2>/dev/null |
    awk -F', ' -v want=",${CUDA_VISIBLE_DEVICES:-},"' want == ",," || index(want, "," $1 ",") {print $2}')
  left=$(nvidia-smi --query-compute-apps=pid,used_memory,gpu_uuid --format=csv,noheader 2>/dev/null |
    grep -F "${uuids:-GPU-}" | cut -d, -f1,2)
  echo "nvidia-smi compute apps after $1: ${left:-none}"
}

# The LLM(...) start-up seconds load_gpt_oss.py reports: run alone, or under MemLens with the given
# `memlens run` options (read from the run's events, then the run is removed).
plain_startup() {
  python3 $LOAD --moe-backend marlin 2>&1 | grep -o 'startup_seconds .*'
}
probed_startup() {
  local work=$1
  shift
  node "$CLI" run --runs-dir "$work/runs" --quiet "$@" -- python3 $LOAD --moe-backend marlin >/dev/null 2>&1
  # The start-up, the probe's own time in each process (its `bye`), then what recording allocation
  # sites cost inside this same run (sites_cost.py). The start-up and the byes from one read.
  local lines
  lines=$(zcat -f "$work"/runs/*/events.jsonl* 2>/dev/null | grep -e 'startup_seconds' -e '"type":"bye"')
  echo "$(grep -o 'startup_seconds [0-9.]*' <<<"$lines" | tail -1)" \
    "probe_seconds $(grep '"type":"bye"' <<<"$lines" |
      grep -o '"probe_ns":[0-9]*' | awk -F: '{printf "%s%.3f", sep, $2 / 1e9; sep = ","}')" \
    "$(python3 scripts/vllm/sites_cost.py "$work"/runs/* 2>&1 | grep -o 'after the exits.*' | head -1)"
  rm -rf "$work"/runs/*
}

scenario() {
  local name=$1 work="/tmp/memlens-scenarios/$1" started=$SECONDS rc LOAD=$LOAD TPL=""
  rm -rf "$work" && mkdir -p "$work/runs"
  echo "== $name ($(date -u +%H:%M:%S))"
  if [[ $name =~ ^(.*)-tp([0-9]+)$ ]]; then
    name=${BASH_REMATCH[1]}
    LOAD="$LOAD --tensor-parallel-size ${BASH_REMATCH[2]}" TPL=" TP=${BASH_REMATCH[2]}"
  fi
  case $name in
    plain-marlin) python3 $LOAD --moe-backend marlin ;;
    plain-auto) python3 $LOAD ;;
    plain-compile) python3 $LOAD --moe-backend marlin --compile --generate 8 ;;
    probed-marlin) node "$CLI" run --runs-dir "$work/runs" --label "gpt-oss-20b${TPL}, marlin, eager" -- python3 $LOAD --moe-backend marlin ;;
    probed-auto) node "$CLI" run --runs-dir "$work/runs" --label "gpt-oss-20b${TPL}, vLLM's backend, eager" -- python3 $LOAD ;;
    truth-marlin)
      MEMLENS_TRUTH_DIR=$work/truth VLLM_ALLOW_INSECURE_SERIALIZATION=1 node "$CLI" run --runs-dir "$work/runs" \
        --label "gpt-oss-20b${TPL}, marlin, eager (with torch memory history)" -- python3 $LOAD --moe-backend marlin --dump-truth ;;
    emu*)
      # emuGIB or emuGIB-uUTIL: the card's size, and gpu_memory_utilization (default 0.98)
      local gib=${name#emu} util=0.98
      [[ $gib == *-u* ]] && util=${gib#*-u} gib=${gib%%-u*}
      node "$CLI" run --runs-dir "$work/runs" --emulate-gib "$gib" \
        --label "gpt-oss-20b${TPL}, marlin, emulated $gib GiB, gpu_memory_utilization $util" \
        -- python3 $LOAD --moe-backend marlin --small-card-defaults --gpu-memory-utilization "$util" ;;
    bench-startup*)
      local n=${name#bench-startup} i
      for ((i = 1; i <= ${n:-3}; i++)); do
        echo "plain $i: $(plain_startup)"
        echo "probed $i: $(probed_startup "$work")"
      done
      python3 scripts/vllm/startup_ratio.py "$work/log.txt" "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" ;;
    bench-parts*)
      local rounds=${name#bench-parts} round variant
      for ((round = 1; round <= ${rounds:-2}; round++)); do
        echo "plain $round: $(plain_startup)"
        for variant in "--no-sites" "" "--sites-calls 0"; do
          # shellcheck disable=SC2086 # the variant is several options
          echo "probed ${variant:-(default)} $round: $(probed_startup "$work" $variant)"
        done
      done ;;
    dap-step) node scripts/vllm/dap-step.mjs "$work" "${CLI%/*}/debugAdapter.js" -- python3 $LOAD --moe-backend marlin ;;
    probed-compile)
      node "$CLI" run --runs-dir "$work/runs" --probe "$FORWARD_PROBE" --label "gpt-oss-20b${TPL}, marlin, compiled + CUDA graphs" \
        -- python3 $LOAD --moe-backend marlin --compile --generate 8 ;;
    *) echo "unknown scenario $name" ;;
  esac >"$work/log.txt" 2>&1
  rc=$?
  echo "exit $rc after $((SECONDS - started)) s" | tee -a "$work/log.txt"
  grep -E "memlens-target:|Model loading took|KV cache|Maximum concurrency|Graph capturing|memory|Error|error" "$work/log.txt" | grep -v "^memlens: pid .*: " | tail -25
  no_gpu_leftovers "$name" | tee -a "$work/log.txt"
  if [[ -d $work/truth ]]; then
    local run
    run=$(ls -d "$work"/runs/*/ | head -1)
    python3 scripts/vllm/check_truth.py "$run" "$work/truth" --out "$work/truth.json" | tail -30 | tee -a "$work/log.txt"
    rm -f "$work"/truth/*.pickle
  fi
  # Where the conversion hotspots' memory went (the catalog records their sites by default).
  for d in "$work"/runs/*/; do
    [[ -f $d/events.jsonl ]] && grep -q '"type":"sites"' "$d/events.jsonl" &&
      node "$CLI" sites "$d" 2>&1 | head -25 | tee -a "$work/log.txt"
  done
  for f in "$work"/runs/*/events.jsonl; do [[ -f $f ]] && gzip -9 "$f"; done
  tar -czf "$OUT/$1.tar.gz" -C "$work" .
}

save_jit_cache() {
  tar -czf - -C "$HOME" $(cd "$HOME" && ls -d .cache/flashinfer .triton .cache/vllm .cache/torch 2>/dev/null) |
    split -b 15M - "$OUT/jitcache.part-"
  ls -l "$OUT"/jitcache.part-*
}

mkdir -p "$OUT"
if compgen -G ".whl/jitcache/jitcache.part-*" >/dev/null && [[ ! -e $HOME/.memlens-jitcache-restored ]]; then
  cat .whl/jitcache/jitcache.part-* | tar -xzf - -C "$HOME" && touch "$HOME/.memlens-jitcache-restored"
  echo "restored kernel caches from .whl/jitcache"
fi
for s in "$@"; do
  if [[ $s == save-jit-cache ]]; then save_jit_cache; else scenario "$s"; fi
done
