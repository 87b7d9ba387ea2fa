#include "l4lb/ring/tag.h"

#include "gtest/gtest.h"

namespace l4lb::ring {
namespace {

TEST(TagTest, RoundTrips) {
  const uint64_t data = Tag::Encode(Op::kBackendReadable, 0x123456, 0xFEDCBA98);
  const Tag tag = Tag::Decode(data);
  EXPECT_EQ(tag.op, Op::kBackendReadable);
  EXPECT_EQ(tag.generation, 0x123456u);
  EXPECT_EQ(tag.slot, 0xFEDCBA98u);
  EXPECT_EQ(tag.Encode(), data);
}

TEST(TagTest, GenerationIsTruncatedTo24BitsAndWraps) {
  EXPECT_EQ(Tag::Decode(Tag::Encode(Op::kAccept, 0x1FFFFFF, 7)).generation, 0xFFFFFFu);
  EXPECT_EQ(Tag::Decode(Tag::Encode(Op::kAccept, 0x1FFFFFF, 7)).op, Op::kAccept);
  EXPECT_EQ(NextGeneration(0xFFFFFF), 0u);
  EXPECT_EQ(NextGeneration(5), 6u);
}

TEST(TagTest, ZeroUserDataIsNotAValidOp) {
  // Op values start at 1, so a zeroed user_data (e.g. a forgotten set_data) never
  // decodes to a real operation.
  EXPECT_NE(static_cast<uint8_t>(Tag::Decode(0).op), static_cast<uint8_t>(Op::kAccept));
}

}  // namespace
}  // namespace l4lb::ring
