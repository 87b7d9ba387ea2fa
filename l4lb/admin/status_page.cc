#include "l4lb/admin/status_page.h"

// kStatusPageHtml: status_page.html as a raw string (the genrule in BUILD.bazel).
#include "l4lb/admin/status_page_html.h"

namespace l4lb::admin {

absl::string_view StatusPageHtml() { return {kStatusPageHtml, sizeof(kStatusPageHtml) - 1}; }

}  // namespace l4lb::admin
