#pragma once

#include "absl/strings/string_view.h"

namespace l4lb::admin {

// The status page, GET / of the admin endpoint: one self-contained HTML
// document for a wall screen (inline CSS and script, no external asset) that
// polls GET /status every 2 s and shows every service and backend: state badge,
// weight, active and total connections, throughput up and down (from successive
// samples), the last check and its age, the time in the current state, and a
// STALE warning when fetches fail. Opened as /?token=TOKEN it sends that token
// as "Authorization: Bearer TOKEN" (AdminServer accepts ?token= for / alone).
//
// Edited as l4lb/admin/status_page.html, compiled in as one string by a genrule
// (BUILD.bazel); tests/status_page_e2e_test renders it in headless Chromium.
//
// Thread safety: constant data.
absl::string_view StatusPageHtml();

// The headers it is served with. The policy lets the page load nothing from
// anywhere (its inline style and script only) and fetch only from its own
// origin, nor be framed (once actions exist, a framed page could be clicked
// through).
inline constexpr char kStatusPageContentType[] = "text/html; charset=utf-8";
inline constexpr char kStatusPageCsp[] =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

}  // namespace l4lb::admin
