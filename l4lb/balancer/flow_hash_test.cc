#include "l4lb/balancer/flow_hash.h"

#include <stdio.h>

#include <algorithm>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace l4lb::balancer {
namespace {

TEST(StableHash64Test, GoldenValues) {
  // Pinned: every l4lb instance, on any machine or version, must compute these.
  // If this fails, the flow keys changed and every client would move backend.
  EXPECT_EQ(StableHash64(""), 0x0000000000000000ULL);
  EXPECT_EQ(StableHash64("10.0.0.1:80"), 0xed9bb5e38f6916d6ULL);
  EXPECT_EQ(StableHash64("10.0.0.1:80", 42), 0xf3a5311122b87013ULL);
  const uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  EXPECT_EQ(StableHash64(absl::MakeConstSpan(ip)), 0x58e44cbb21771d05ULL);
  EXPECT_EQ(Mix64(1), 0x5692161d100b05e5ULL);
}

TEST(StableHash64Test, SeedAndEveryByteMatter) {
  EXPECT_NE(StableHash64("abc", 1), StableHash64("abc", 2));
  std::set<uint64_t> seen;
  const char* inputs[] = {"a", "b", "ab", "ba", "abcdefgh", "abcdefgi", "abcdefghi", "bbcdefghi"};
  for (const char* s : inputs) seen.insert(StableHash64(s));
  EXPECT_EQ(seen.size(), std::size(inputs));
}

TEST(StableHash64Test, SequentialAddressesSpreadEvenly) {
  // Clients as FlowKey() hashes them: IPv4 mapped into 16 bytes. An ideal hash
  // gives max/mean about 1.02 here (64 buckets of 15,625: sigma 0.8%).
  constexpr int kBuckets = 64;
  constexpr int kKeys = 1'000'000;
  std::vector<int> buckets(kBuckets);
  for (uint32_t i = 0; i < kKeys; ++i) {
    const uint8_t ip[16] = {0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0xff,
                            0xff,
                            10,
                            static_cast<uint8_t>(i >> 16),
                            static_cast<uint8_t>(i >> 8),
                            static_cast<uint8_t>(i)};
    ++buckets[StableHash64(absl::MakeConstSpan(ip)) % kBuckets];
  }
  const double max_over_mean =
      *std::max_element(buckets.begin(), buckets.end()) / (double{kKeys} / kBuckets);
  printf("1M sequential IPv4 clients into 64 buckets: max/mean %.4f\n", max_over_mean);
  EXPECT_LE(max_over_mean, 1.04);
}

TEST(StableHash64Test, OneInputBitFlipsHalfTheOutput) {
  // Avalanche: an identity-like hash would spread sequential input evenly too, but
  // fails here.
  uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  int total = 0;
  int samples = 0;
  for (int byte = 12; byte < 16; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      const uint64_t before = StableHash64(absl::MakeConstSpan(ip));
      ip[byte] ^= 1 << bit;
      total += __builtin_popcountll(before ^ StableHash64(absl::MakeConstSpan(ip)));
      ip[byte] ^= 1 << bit;
      ++samples;
    }
  }
  const double mean_bits = static_cast<double>(total) / samples;
  printf("one flipped address bit: %.2f of 64 hash bits change\n", mean_bits);
  EXPECT_NEAR(mean_bits, 32, 4);
}

TEST(Mix64Test, NeighboursLandFarApart) {
  // key + attempt must give unrelated picks: about half the bits differ.
  int total = 0;
  for (uint64_t k = 0; k < 1000; ++k) total += __builtin_popcountll(Mix64(k) ^ Mix64(k + 1));
  const double mean_bits = total / 1000.0;
  printf("Mix64(k) vs Mix64(k+1): %.2f of 64 bits differ\n", mean_bits);
  EXPECT_NEAR(mean_bits, 32, 2);
}

}  // namespace
}  // namespace l4lb::balancer
