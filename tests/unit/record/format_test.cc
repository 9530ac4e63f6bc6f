#include "userspace/record/format.h"

#include "gtest/gtest.h"
#include "userspace/common/file_util.h"

namespace interlock::record {
namespace {

TEST(RecordFrame, EncodeDecodeRoundTrip) {
  const std::string frame = EncodeFrame("hello");
  EXPECT_EQ(frame, std::string("\0\0\0\5hello", 9));
  const std::string buf = frame + "trailing";
  const FrameView f = DecodeFrame(buf);
  ASSERT_EQ(f.result, FrameView::Result::kFrame);
  EXPECT_EQ(f.length, 5u);
  EXPECT_EQ(f.frame_bytes, 9u);
  EXPECT_EQ(f.record, "hello");
}

TEST(RecordFrame, OneByteAtATimeIsTruncatedUntilComplete) {
  const std::string frame = EncodeFrame("abcdef");
  for (size_t n = 0; n < frame.size(); ++n) {
    EXPECT_EQ(DecodeFrame(absl::string_view(frame).substr(0, n)).result,
              FrameView::Result::kTruncated)
        << n;
  }
  EXPECT_EQ(DecodeFrame(frame).result, FrameView::Result::kFrame);
}

TEST(RecordFrame, TwoFramesInOneBuffer) {
  const std::string buf = EncodeFrame("one") + EncodeFrame("two!");
  const FrameView a = DecodeFrame(buf);
  ASSERT_EQ(a.result, FrameView::Result::kFrame);
  const FrameView b = DecodeFrame(absl::string_view(buf).substr(a.frame_bytes));
  ASSERT_EQ(b.result, FrameView::Result::kFrame);
  EXPECT_EQ(a.record, "one");
  EXPECT_EQ(b.record, "two!");
}

TEST(RecordFrame, ZeroAndOversizedLengthsAreBad) {
  EXPECT_EQ(DecodeFrame(std::string("\0\0\0\0", 4)).result, FrameView::Result::kBadLength);
  const std::string big("\x00\x20\x00\x01", 4);  // kMaxRecordBytes + 1
  const FrameView f = DecodeFrame(big);
  EXPECT_EQ(f.result, FrameView::Result::kBadLength);
  EXPECT_EQ(f.length, kMaxRecordBytes + 1);
  EXPECT_EQ(DecodeFrame(std::string("\xff\xff\xff\xff", 4)).result, FrameView::Result::kBadLength);
}

TEST(RecordFrame, HashOfEmptyInputIsSha256) {
  EXPECT_EQ(HexEncode(HashRecord("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ZeroHash(), std::string(32, '\0'));
}

TEST(RecordSeal, MessageLayout) {
  const std::string prev(32, '\x07');
  const std::string msg = SealMessage("sid", 0x0102030405060708ULL, prev);
  EXPECT_EQ(msg, std::string("interlock.v1.seal") + "sid" +
                     std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8) + prev);
}

}  // namespace
}  // namespace interlock::record
