#include "userspace/control/framing.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "interlock/v1/control.pb.h"

namespace interlock::control {
namespace {

using ::testing::HasSubstr;

v1::ControlRequest EnrollRequest(size_t name_len) {
  v1::ControlRequest req;
  req.mutable_enroll()->set_name(std::string(name_len, 'n'));
  req.mutable_enroll()->set_default_deny(true);
  return req;
}

std::string Header(uint32_t n) {
  return std::string{static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
}

TEST(ControlFraming, EncodesBigEndianLengthThenBody) {
  v1::ControlRequest req;
  req.mutable_status();
  // Field 1, length-delimited, empty: 0x0a 0x00.
  EXPECT_EQ(EncodeFrame(req), std::string("\x00\x00\x00\x02\x0a\x00", 6));

  v1::ControlRequest big = EnrollRequest(300);
  const std::string body = big.SerializeAsString();
  ASSERT_GT(body.size(), 256u);
  EXPECT_EQ(EncodeFrame(big), Header(static_cast<uint32_t>(body.size())) + body);
}

TEST(ControlFraming, DecodesOneByteAtATime) {
  const v1::ControlRequest req = EnrollRequest(40);
  const std::string frame = EncodeFrame(req);
  FrameDecoder dec;
  for (size_t i = 0; i + 1 < frame.size(); ++i) {
    dec.Append(frame.substr(i, 1));
    auto next = dec.Next();
    ASSERT_TRUE(next.ok()) << "byte " << i << ": " << next.status();
    ASSERT_FALSE(next->has_value()) << "byte " << i;
    EXPECT_EQ(dec.buffered(), i + 1);
  }
  dec.Append(frame.substr(frame.size() - 1));
  auto next = dec.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, req.SerializeAsString());
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(ControlFraming, DecodesTwoFramesInOneAppend) {
  v1::ControlRequest a;
  a.mutable_status();
  v1::ControlRequest b = EnrollRequest(7);
  FrameDecoder dec;
  dec.Append(EncodeFrame(a) + EncodeFrame(b) + Header(9).substr(0, 2));

  auto first = dec.Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  v1::ControlRequest got;
  ASSERT_TRUE(got.ParseFromString(**first));
  EXPECT_TRUE(got.has_status());

  auto second = dec.Next();
  ASSERT_TRUE(second.ok() && second->has_value());
  ASSERT_TRUE(got.ParseFromString(**second));
  EXPECT_EQ(got.enroll().name(), "nnnnnnn");

  // Only half a header is left.
  auto third = dec.Next();
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->has_value());
  EXPECT_EQ(dec.buffered(), 2u);
}

TEST(ControlFraming, TruncatedFrameWaitsForMore) {
  const std::string frame = EncodeFrame(EnrollRequest(100));
  for (size_t cut : {size_t{0}, size_t{3}, size_t{4}, frame.size() - 1}) {
    FrameDecoder dec;
    dec.Append(frame.substr(0, cut));
    auto next = dec.Next();
    ASSERT_TRUE(next.ok()) << "cut " << cut << ": " << next.status();
    EXPECT_FALSE(next->has_value()) << "cut " << cut;
    // Asking again does not consume anything.
    EXPECT_FALSE(dec.Next()->has_value());
    EXPECT_EQ(dec.buffered(), cut);
  }
}

TEST(ControlFraming, OversizedLengthRejectedFromHeaderAlone) {
  for (uint32_t n : {kMaxControlFrameBytes + 1, uint32_t{0x7fffffff}, uint32_t{0xffffffff}}) {
    FrameDecoder dec;
    dec.Append(Header(n));  // no body bytes at all
    auto next = dec.Next();
    EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument) << n;
    EXPECT_THAT(next.status().message(), HasSubstr(absl::StrCat("frame length ", n))) << n;
    EXPECT_EQ(dec.buffered(), 4u);
  }
}

TEST(ControlFraming, MaxLengthIsAccepted) {
  FrameDecoder dec;
  dec.Append(Header(kMaxControlFrameBytes));
  auto next = dec.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_FALSE(next->has_value());
  dec.Append(std::string(kMaxControlFrameBytes, 'x'));
  next = dec.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->size(), kMaxControlFrameBytes);
}

TEST(ControlFraming, GarbageBodyIsDeliveredForTheParserToReject) {
  // Framing does not look inside the body; the server's ParseFromString does.
  FrameDecoder dec;
  dec.Append(Header(4) + "\xff\xff\xff\xff");
  auto next = dec.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  v1::ControlRequest req;
  EXPECT_FALSE(req.ParseFromString(**next));
}

}  // namespace
}  // namespace interlock::control
