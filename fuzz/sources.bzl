"""cc_sources: the source and header files of cc_library targets and of all their deps.

tools/fuzz.sh compiles the fuzz targets with clang++-14 from the sources themselves
(the Bazel toolchain is gcc), so //fuzz:fuzz_test takes them as data: Bazel reruns it
when any of them changes, and the runfiles tree holds exactly what may be compiled.
"""

_Sources = provider(fields = ["files"])

def _collect_impl(target, ctx):
    direct = []
    for attr in ("srcs", "hdrs", "textual_hdrs"):
        direct += getattr(ctx.rule.files, attr, [])
    transitive = [d[_Sources].files for d in getattr(ctx.rule.attr, "deps", []) if _Sources in d]
    return [_Sources(files = depset(direct, transitive = transitive))]

_collect = aspect(implementation = _collect_impl, attr_aspects = ["deps"])

def _cc_sources_impl(ctx):
    files = depset(transitive = [d[_Sources].files for d in ctx.attr.deps])
    return [DefaultInfo(files = files, runfiles = ctx.runfiles(transitive_files = files))]

cc_sources = rule(
    implementation = _cc_sources_impl,
    attrs = {"deps": attr.label_list(aspects = [_collect])},
)
