#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "conf/config.h"

namespace l4lb::conf {
namespace {

// The load's error ("loaded fine" if none).
std::string Error(const std::string& text) {
  absl::StatusOr<std::vector<Server::Service>> services = LoadConfigString(text, "t.toml");
  return services.ok() ? "loaded fine" : std::string(services.status().message());
}

const char kTcp[] = "[[service]]\nlisten = [\"0.0.0.0:80\"]\nbackends = [\"10.0.0.1:80\"]\n";
const char kUdp[] =
    "[[service]]\nprotocol = \"udp\"\nlisten = [\"0.0.0.0:53\"]\nbackends = [\"10.0.0.1:53\"]\n";

TEST(SourceKeysTest, SourceAsAStringOrAList) {
  for (const char* value : {"\"10.0.0.5,2001:db8::5\"", "[\"10.0.0.5\", \"2001:db8::5\"]"}) {
    absl::StatusOr<std::vector<Server::Service>> services =
        LoadConfigString(std::string(kTcp) + "source = " + value + "\n", "t.toml");
    ASSERT_TRUE(services.ok()) << services.status();
    ASSERT_EQ((*services)[0].source.size(), 2u) << value;
    EXPECT_EQ((*services)[0].source[1].ToString(), "[2001:db8::5]:0");
    EXPECT_FALSE((*services)[0].transparent);
  }
  EXPECT_EQ(Error(std::string(kTcp) + "source = [5]\n"),
            "t.toml:4:11: source: want addresses as strings, e.g. [\"10.0.0.5\"]");
  EXPECT_EQ(Error(std::string(kTcp) + "source = \"10.0.0.5:80\"\n"),
            "t.toml:4:10: source: \"10.0.0.5:80\": a source is an address without a port");
}

TEST(SourceKeysTest, TransparentFromTheServiceOrDefaultsForTcpServicesOnly) {
  absl::StatusOr<std::vector<Server::Service>> services =
      LoadConfigString(std::string("[defaults]\ntransparent = true\n") + kTcp + kUdp +
                           "[[service]]\nlisten = [\"0.0.0.0:81\"]\nbackends = [\"10.0.0.1:80\"]\n"
                           "transparent = false\n",
                       "t.toml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 3u);
  EXPECT_TRUE((*services)[0].transparent) << "from [defaults]";
  EXPECT_FALSE((*services)[1].transparent) << "[defaults] skip udp services";
  EXPECT_FALSE((*services)[2].transparent) << "the service's own value wins";
  EXPECT_EQ(Error(std::string(kUdp) + "transparent = true\n"),
            "t.toml:5:15: transparent: only for tcp services");
  EXPECT_EQ(Error(std::string(kTcp) + "transparent = \"yes\"\n"),
            "t.toml:4:15: transparent: want true or false, got a string");
}

TEST(SourceKeysTest, TransparentIsRefusedWithSourceFromEitherLevel) {
  EXPECT_EQ(Error(std::string(kTcp) + "source = \"10.0.0.5\"\ntransparent = true\n"),
            "t.toml:5:15: transparent: not with source (the client's address is the source)");
  EXPECT_EQ(
      Error(std::string("[defaults]\nsource = \"10.0.0.5\"\n") + kTcp + "transparent = true\n"),
      "t.toml:6:15: transparent: not with source (the client's address is the source)");
}

}  // namespace
}  // namespace l4lb::conf
