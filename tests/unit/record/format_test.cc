#include "userspace/record/format.h"

#include <random>

#include "gtest/gtest.h"
#include "interlock/v1/record.pb.h"
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

// The hand encoders must give exactly protobuf's bytes: the verifier parses and re-hashes
// them, and an older reader must read them.
std::string Protobuf(const v1::Record& r) {
  std::string out;
  EXPECT_TRUE(r.SerializeToString(&out));
  return out;
}

TEST(RecordFrameEncoders, ByteForByteWhatProtobufWrites) {
  std::mt19937_64 rng(7);
  const std::string hash(kHashBytes, '\x5a');
  const uint64_t seqs[] = {0, 1, 127, 128, 300, 1ull << 35, ~0ull};
  const int64_t times[] = {0, 1, -1, 1765000000123456789, INT64_MIN, INT64_MAX};
  for (uint64_t seq : seqs) {
    for (int64_t t : times) {
      for (size_t len : {size_t{1}, size_t{127}, size_t{128}, size_t{16383}, size_t{16384}, kMaxPayloadBytes}) {
        std::string payload(len, '\0');
        for (char& c : payload) c = static_cast<char>(rng());
        for (uint32_t dir : {1u, 2u}) {
          v1::Record r;
          r.set_seq(seq);
          r.set_prev_hash(seq == 0 ? ZeroHash() : hash);
          r.set_time_unix_nanos(t);
          r.mutable_data()->set_direction(static_cast<v1::Direction>(dir));
          r.mutable_data()->set_payload(payload);
          std::string out = "prefix";
          size_t start = AppendDataFrame(&out, seq, r.prev_hash(), t, dir, payload);
          ASSERT_EQ(out.substr(start), Protobuf(r)) << seq << " " << t << " " << len;
          ASSERT_EQ(out.substr(0, start), "prefix" + EncodeFrame(Protobuf(r)).substr(0, kFrameHeaderBytes));
        }
      }
      for (auto [kind, detail] : {std::pair<std::string, std::string>{"http_exchange", "completed GET a/b"},
                                  {"", "only detail"}, {"only kind", ""}, {"", ""},
                                  {"k", std::string(20000, 'd')}, {"\xc3\xa9", "\xe2\x82\xac"}}) {
        v1::Record r;
        r.set_seq(seq);
        r.set_prev_hash(hash);
        r.set_time_unix_nanos(t);
        r.mutable_event()->set_kind(kind);
        r.mutable_event()->set_detail(detail);
        std::string out;
        size_t start = AppendEventFrame(&out, seq, hash, t, kind, detail);
        ASSERT_EQ(out, EncodeFrame(Protobuf(r)));
        EXPECT_EQ(start, kFrameHeaderBytes);
      }
    }
  }
}

}  // namespace
}  // namespace interlock::record
