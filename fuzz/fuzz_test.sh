#!/usr/bin/env bash
# //fuzz:fuzz_test: tools/fuzz.sh from the runfiles tree, where Bazel has put the
# sources the fuzz targets compile (fuzz/BUILD.bazel, :sources).
set -euo pipefail
cd "${TEST_SRCDIR}/${TEST_WORKSPACE}"
exec tools/fuzz.sh "$@"
