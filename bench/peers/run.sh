#!/usr/bin/env bash
# gdngraph vs FLA on a GPU machine, when the peer wheels are in .peers/ at the repo root
# (FLA's fla_core + flash_linear_attention, and einops if the machine lacks it): installs
# them into /tmp/peers, runs the FLA oracle tests (tests/python/test_gpu_fla.py), then
# bench/peers/bench_peers.py. The package comes from the build tree ($BUILD, default
# build-gpu, as ci/gpu builds it) or, without one, from `pip install .` into /tmp.
#   bench/peers/run.sh [bench_peers.py arguments, e.g. --reps 100 --only split]
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
BUILD=${BUILD:-build-gpu}
if ! ls .peers/*.whl >/dev/null 2>&1; then
  echo "SKIP: no peer wheels in .peers/"
  exit 0
fi
$PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/peers .peers/*.whl || exit 1

lib="$BUILD/python/gdngraph/libgdngraph.so"
if [ -f "$lib" ]; then
  export GDNGRAPH_LIBRARY="$PWD/$lib" PKG="$PWD/python"
else
  echo "no $lib: building the package with pip"
  $PY -m pip install -q --no-build-isolation --no-deps --target /tmp/gdngraph-pkg . || exit 1
  PKG=/tmp/gdngraph-pkg
fi
export PYTHONPATH="$PKG:/tmp/peers:$PWD/bench/peers${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

echo "== FLA oracle tests"
$PY -m pytest -q -rs -p no:cacheprovider -s tests/python/test_gpu_fla.py
tests_rc=$?
echo "== bench_peers"
$PY bench/peers/bench_peers.py "$@"
bench_rc=$?
[ $tests_rc -eq 0 ] && [ $bench_rc -eq 0 ]
