#include "l4lb/admin/metrics.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "l4lb/admin/test_view.h"

namespace l4lb::admin {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (l == line) return true;
  }
  return false;
}

TEST(MetricsTest, BackendCountersCarryServiceAndBackendLabels) {
  const std::string out = RenderMetrics(TestView());
  const std::string web1 = "service=\"web\",backend=\"10.0.0.1:80\"";
  EXPECT_TRUE(HasLine(out, "l4lb_connections_total{" + web1 + "} 3")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_bytes_total{" + web1 + ",direction=\"up\"} 100")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_bytes_total{" + web1 + ",direction=\"down\"} 900")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_backend_up{" + web1 + "} 1")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_backend_up{service=\"web\",backend=\"10.0.0.2:80\"} 0")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_backend_weight{service=\"web\",backend=\"10.0.0.2:80\"} 3"));
  EXPECT_TRUE(HasLine(out, "l4lb_refused_total{service=\"web\",reason=\"banned\"} 1")) << out;
  EXPECT_TRUE(HasLine(out, "process_open_fds 12")) << out;
  EXPECT_TRUE(HasLine(out, "process_max_fds 1024")) << out;
}

TEST(MetricsTest, StateIsOneHotOverAllFourStates) {
  const std::string out = RenderMetrics(TestView());
  const std::string web2 = "l4lb_backend_state{service=\"web\",backend=\"10.0.0.2:80\",state=";
  EXPECT_TRUE(HasLine(out, web2 + "\"UP\"} 0")) << out;
  EXPECT_TRUE(HasLine(out, web2 + "\"DOWN\"} 1")) << out;
  EXPECT_TRUE(HasLine(out, web2 + "\"DRAIN\"} 0")) << out;
  EXPECT_TRUE(HasLine(out, web2 + "\"MAINT\"} 0")) << out;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeInSeconds) {
  const std::string out = RenderMetrics(TestView());
  const std::string h = "l4lb_connect_duration_seconds_bucket{service=\"web\",backend=\"10.0.0.1:80\",";
  EXPECT_TRUE(HasLine(out, h + "le=\"0.0001\"} 2")) << out;
  EXPECT_TRUE(HasLine(out, h + "le=\"0.00025\"} 2")) << out;
  EXPECT_TRUE(HasLine(out, h + "le=\"0.0005\"} 3")) << out;
  EXPECT_TRUE(HasLine(out, h + "le=\"+Inf\"} 3")) << out;
  EXPECT_TRUE(HasLine(
      out, "l4lb_connect_duration_seconds_sum{service=\"web\",backend=\"10.0.0.1:80\"} 0.0006"));
  EXPECT_TRUE(HasLine(
      out, "l4lb_connect_duration_seconds_count{service=\"web\",backend=\"10.0.0.1:80\"} 3"));
  EXPECT_TRUE(HasLine(out, "l4lb_connection_duration_seconds_count{service=\"web\"} 3")) << out;
}

TEST(MetricsTest, EveryFamilyHasHelpAndTypeOnce) {
  const std::string out = RenderMetrics(TestView());
  int help = 0;
  int type = 0;
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    help += absl::StartsWith(l, "# HELP l4lb_connections_total ");
    type += l == "# TYPE l4lb_connections_total counter";
  }
  EXPECT_EQ(help, 1);
  EXPECT_EQ(type, 1);
  EXPECT_TRUE(absl::EndsWith(out, "\n"));
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  View v = TestView();
  v.services[0].name = "a\"b\\c\nd";
  const std::string out = RenderMetrics(v);
  EXPECT_TRUE(HasLine(out, "l4lb_no_backend_total{service=\"a\\\"b\\\\c\\nd\"} 0")) << out;
}

// Only with named backends' refresher behind the view: one family, three results.
TEST(MetricsTest, DnsRefreshesByResult) {
  View v = TestView();
  EXPECT_FALSE(absl::StrContains(RenderMetrics(v), "l4lb_dns_refreshes_total"));
  v.dns_refreshes = DnsRefreshes{.changed = 2, .unchanged = 40, .failure = 1};
  const std::string out = RenderMetrics(v);
  EXPECT_TRUE(HasLine(out, "l4lb_dns_refreshes_total{result=\"changed\"} 2")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_dns_refreshes_total{result=\"unchanged\"} 40")) << out;
  EXPECT_TRUE(HasLine(out, "l4lb_dns_refreshes_total{result=\"failure\"} 1")) << out;
}

}  // namespace
}  // namespace l4lb::admin
