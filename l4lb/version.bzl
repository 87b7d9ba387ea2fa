# The release this tree is. tools/package.sh builds l4lb_VERSION_amd64.deb from it: a build
# stamped with the commit (bazel --stamp, tools/workspace_status.sh) is
# VERSION+gitYYYYMMDDTHHMMSS.COMMIT, which sorts after VERSION and by commit time.
L4LB_VERSION = "0.14.0"
