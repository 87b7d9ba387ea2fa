#include "l4lb/admin/status_page.h"

#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "l4lb/admin/view.h"

namespace l4lb::admin {
namespace {

const std::string& Page() {
  static const std::string* page = new std::string(StatusPageHtml());
  return *page;
}

TEST(StatusPageTest, IsOneWholeHtmlDocument) {
  EXPECT_TRUE(absl::StartsWith(Page(), "<!doctype html>\n")) << Page().substr(0, 80);
  EXPECT_TRUE(absl::EndsWith(Page(), "</html>\n"));
  EXPECT_TRUE(absl::StrContains(Page(), "<meta charset=\"utf-8\">"));
  EXPECT_GT(Page().size(), 4000u);
  EXPECT_EQ(Page().find('\0'), std::string::npos);
}

// Nothing the browser would load from elsewhere: no src attribute, links only
// to data: URLs, no CSS import or url() and no absolute URL in the script.
TEST(StatusPageTest, LoadsNoExternalAsset) {
  const std::string& page = Page();
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(\ssrc\s*=)", std::regex::icase)));
  EXPECT_FALSE(absl::StrContains(page, "@import"));
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(url\()", std::regex::icase)));
  EXPECT_FALSE(std::regex_search(page, std::regex(R"(https?:|["'(]//)", std::regex::icase)));
  std::smatch m;
  std::string rest = page;
  int hrefs = 0;
  while (std::regex_search(rest, m, std::regex(R"re(href\s*=\s*"([^"]*)")re"))) {
    EXPECT_TRUE(absl::StartsWith(m[1].str(), "data:")) << m[0];
    ++hrefs;
    rest = m.suffix();
  }
  EXPECT_EQ(hrefs, 1);  // the empty favicon: no request for /favicon.ico
  EXPECT_TRUE(absl::StrContains(kStatusPageCsp, "default-src 'none'"));
  EXPECT_TRUE(absl::StrContains(kStatusPageCsp, "connect-src 'self'"));
}

TEST(StatusPageTest, PollsStatusOfItsOwnOriginWithTheTokenOfItsUrl) {
  const std::string& page = Page();
  EXPECT_TRUE(absl::StrContains(page, "fetch('status'"));
  EXPECT_TRUE(absl::StrContains(page, "const POLL_MS = 2000;"));
  EXPECT_TRUE(absl::StrContains(page, "new URLSearchParams(location.search).get('token')"));
  EXPECT_TRUE(absl::StrContains(page, "{ Authorization: 'Bearer ' + token }"));
}

// Backend names and probe reasons come from the config and from the network:
// the script writes text nodes and attributes only, never markup.
TEST(StatusPageTest, WritesNoMarkupFromData) {
  const std::string& page = Page();
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function"}) {
    EXPECT_FALSE(absl::StrContains(page, sink)) << sink;
  }
}

// Every state /status can report has its badge colour, and rows carry the
// state as an attribute tests read (tests/status_page_e2e_test).
TEST(StatusPageTest, StylesEveryBackendState) {
  for (const BackendState state : kBackendStates) {
    const std::string css = absl::StrCat(".state-", StateName(state), " {");
    EXPECT_TRUE(absl::StrContains(Page(), css)) << css;
  }
  for (const char* hook : {"'data-backend': b.name", "'data-state': b.state",
                           "'data-service': s.name", "'data-connections': b.connections_total",
                           "document.body.dataset.stale", "document.body.dataset.samples"}) {
    EXPECT_TRUE(absl::StrContains(Page(), hook)) << hook;
  }
}

}  // namespace
}  // namespace l4lb::admin
