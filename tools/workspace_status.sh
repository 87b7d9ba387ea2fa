#!/bin/sh
# Bazel's --workspace_status_command for stamped builds (tools/package.sh): the commit
# l4lb is built from, as STABLE_ keys, so a new commit rebuilds what reads them
# (//l4lb:build_info, through tools/build_info.sh). Outside a git checkout it prints
# nothing and the build says "commit unknown".
cd "$(dirname "$0")/.." || exit 0
commit=$(git rev-parse HEAD 2>/dev/null) || exit 0
echo "STABLE_L4LB_COMMIT $commit"
echo "STABLE_L4LB_COMMIT_TIME $(TZ=UTC git show -s --format=%cd \
  --date=format-local:%Y%m%dT%H%M%S HEAD)"
# Untracked files are left out: only tracked ones are in the build's globs.
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "STABLE_L4LB_TREE modified"
else
  echo "STABLE_L4LB_TREE clean"
fi
