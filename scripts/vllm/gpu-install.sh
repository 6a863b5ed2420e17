#!/usr/bin/env bash
# On the GPU host, after every part was appended to /tmp/memlens-bundle.tar: check the bundle,
# install the wheels into /tmp/site (no network, no dependency resolution, hashes required) and
# unpack Node.js to /tmp/node/bin/node. Never installs a second torch.
#   bash scripts/vllm/gpu-install.sh SHA256
# Afterwards: export PYTHONPATH=/tmp/site PATH=/tmp/node/bin:$PATH
set -euo pipefail
cd "$(dirname "$0")/../.."
want=${1:?give the bundle sha256 (.whl/parts/bundle.sha256)}
bundle=/tmp/memlens-bundle.tar
have=$(sha256sum "$bundle" | awk '{print $1}')
if [[ $have != "$want" ]]; then
  echo "bundle sha256 $have != $want: a part is missing or was appended twice; start over (rm $bundle)" >&2
  exit 3
fi
rm -rf /tmp/memlens-bundle /tmp/site
mkdir -p /tmp/memlens-bundle /tmp/site /tmp/node/bin
tar -xf "$bundle" -C /tmp/memlens-bundle
# Wheels added after the bundle was cut (MEMLENS_EXTRA_WHEELS=DIR), still hash-checked below.
if [[ -n ${MEMLENS_EXTRA_WHEELS:-} ]]; then cp "$MEMLENS_EXTRA_WHEELS"/*.whl /tmp/memlens-bundle/wheels/; fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --require-hashes \
  --find-links /tmp/memlens-bundle/wheels --target /tmp/site -r scripts/vllm/requirements-gpu.txt
python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('/tmp/memlens-bundle/node.xz'), open('/tmp/node/bin/node', 'wb'))"
chmod +x /tmp/node/bin/node
# The validation plugin (active only with MEMLENS_TRUTH_DIR): vLLM loads general plugins from
# entry points in every one of its processes.
cp scripts/vllm/memlens_truth.py /tmp/site/
mkdir -p /tmp/site/memlens_truth-0.1.0.dist-info
printf 'Metadata-Version: 2.1\nName: memlens-truth\nVersion: 0.1.0\n' >/tmp/site/memlens_truth-0.1.0.dist-info/METADATA
printf '[vllm.general_plugins]\nmemlens_truth = memlens_truth:register\n' >/tmp/site/memlens_truth-0.1.0.dist-info/entry_points.txt
export PYTHONPATH=/tmp/site
python3 -c "import torch, vllm; print('vllm', vllm.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda)"
/tmp/node/bin/node --version
# The probe's fast counter reader and fast path for this Python and torch (optional: where no
# compiler or headers are found, the probe reads as before, and says so).
(cd python-probe && python3 -m memlens_probe build-fast-stats >/dev/null) ||
  echo "gpu-install: build-fast-stats failed; probed runs read torch's counters and the host in Python" >&2
(cd python-probe && python3 -m memlens_probe selftest | grep '^fast_path ') || true
