#!/usr/bin/env bash
# On a machine WITH PyPI access: download vLLM and the wheels the GPU host lacks (pinned, hash
# checked), add a Node.js binary for MemLens' runner there, and cut the bundle into parts that fit
# one transfer each (default 58 MiB: a device command carries 64 MiB with the working tree).
#   bash scripts/vllm/pack-wheels.sh            -> .whl/parts/bundle.part-aa, -ab, … and bundle.sha256
# Then, per part, on the GPU host: cat PART >> /tmp/memlens-bundle.tar; last: gpu-install.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
PART_SIZE=${MEMLENS_PART_SIZE:-58M}
WHEELS=.whl/wheels
mkdir -p "$WHEELS" .whl/parts
plat=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 \
  manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 manylinux_2_35_x86_64 any; do
  plat+=(--platform "$p")
done
echo "downloading the pinned wheels (Python 3.12, x86_64) into $WHEELS"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi cp312 --abi abi3 --abi none "${plat[@]}" --require-hashes \
  -r scripts/vllm/requirements-gpu.txt -d "$WHEELS"
# MemLens' runner (dist/cli.js) needs Node.js there; this machine's node, xz-compressed.
node_bin=$(command -v node)
if [[ ! -f .whl/node.xz || $node_bin -nt .whl/node.xz ]]; then
  echo "compressing $node_bin ($(node --version))"
  xz -T0 -6 -c "$node_bin" >.whl/node.xz
fi
rm -f .whl/parts/bundle.part-*
tar -cf .whl/bundle.tar -C .whl wheels node.xz
(cd .whl && sha256sum bundle.tar | awk '{print $1}' >parts/bundle.sha256)
split -b "$PART_SIZE" .whl/bundle.tar .whl/parts/bundle.part-
rm -f .whl/bundle.tar
ls -l .whl/parts
echo "sha256 $(cat .whl/parts/bundle.sha256)"
