// framing.h: PeekStartupFrame, PeekFrame, PeekHeader (STYLE.md convention 10 cases).
#include "userspace/codec/pg/framing.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/codec/pg/captured_bytes.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::codec::pg {
namespace {

using captured::Bytes;

std::string Header(char type, uint32_t length) {
  std::string h(1, type);
  h.push_back(static_cast<char>(length >> 24));
  h.push_back(static_cast<char>((length >> 16) & 0xff));
  h.push_back(static_cast<char>((length >> 8) & 0xff));
  h.push_back(static_cast<char>(length & 0xff));
  return h;
}

std::string StartupHeader(uint32_t length) { return Header(0, length).substr(1); }

// Feeds `stream` to PeekFrame in reads of the given sizes, as a proxy's read loop would
// (buffer, peek, consume), and returns the frames' (type, body) in order.
std::vector<std::pair<char, std::string>> ReadAll(absl::string_view stream,
                                                  const std::vector<size_t>& reads) {
  std::vector<std::pair<char, std::string>> out;
  std::string buffered;
  size_t offset = 0;
  for (size_t n : reads) {
    absl::string_view chunk = stream.substr(offset, n);
    buffered.append(chunk.data(), chunk.size());
    offset += chunk.size();
    while (true) {
      absl::StatusOr<std::optional<Frame>> f = PeekFrame(buffered, kMaxMessageBytes);
      EXPECT_TRUE(f.ok()) << f.status();
      if (!f.ok() || !f->has_value()) break;
      out.emplace_back((*f)->type, std::string((*f)->body));
      buffered.erase(0, (*f)->total_bytes);
    }
  }
  EXPECT_TRUE(buffered.empty()) << buffered.size() << " bytes left";
  return out;
}

TEST(PgFraming, StartupOneByteAtATime) {
  absl::string_view packet = Bytes(captured::kStartupMessage);
  for (size_t n = 0; n < packet.size(); ++n) {
    absl::StatusOr<std::optional<Frame>> f = PeekStartupFrame(packet.substr(0, n));
    ASSERT_TRUE(f.ok()) << n << ": " << f.status();
    EXPECT_FALSE(f->has_value()) << n;
  }
  absl::StatusOr<std::optional<Frame>> f = PeekStartupFrame(packet);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->type, 0);
  EXPECT_EQ((*f)->length, packet.size());
  EXPECT_EQ((*f)->total_bytes, packet.size());
  EXPECT_EQ((*f)->body, packet.substr(4));
}

TEST(PgFraming, TypedOneByteAtATime) {
  // 17 messages in one captured read; a growing prefix yields each exactly when it is whole.
  absl::string_view stream = Bytes(captured::kLoginCompletion);
  size_t start = 0;
  int frames = 0;
  for (size_t end = start; end <= stream.size(); ++end) {
    absl::string_view buf = stream.substr(start, end - start);
    absl::StatusOr<std::optional<Frame>> f = PeekFrame(buf, kMaxMessageBytes);
    ASSERT_TRUE(f.ok()) << f.status();
    absl::StatusOr<std::optional<FrameHeader>> h = PeekHeader(buf, kMaxMessageBytes);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->has_value(), buf.size() >= kMessageHeaderBytes);
    if (!f->has_value()) continue;
    EXPECT_EQ((*f)->total_bytes, buf.size()) << "frame seen late or early";
    EXPECT_EQ((*h)->total_bytes, (*f)->total_bytes);
    start = end;
    ++frames;
  }
  EXPECT_EQ(frames, 17);
  EXPECT_EQ(start, stream.size());
}

TEST(PgFraming, TwoMessagesInOneRead) {
  std::string two = EncodeQuery("SELECT 1") + EncodeTerminate();
  absl::StatusOr<std::optional<Frame>> first = PeekFrame(two, kMaxMessageBytes);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->type, 'Q');
  EXPECT_EQ((*first)->length, 13u);
  EXPECT_EQ((*first)->body, absl::string_view("SELECT 1\0", 9));
  EXPECT_EQ((*first)->total_bytes, 14u);
  absl::StatusOr<std::optional<Frame>> second =
      PeekFrame(absl::string_view(two).substr((*first)->total_bytes), kMaxMessageBytes);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->type, 'X');
  EXPECT_EQ((*second)->body, "");
  EXPECT_EQ((*second)->total_bytes, 5u);
}

TEST(PgFraming, StartupThenTypedInOneRead) {
  // A client may pipeline its first Query right behind the StartupMessage.
  std::string buf = std::string(Bytes(captured::kStartupMessage)) + EncodeQuery("SELECT 1");
  absl::StatusOr<std::optional<Frame>> startup = PeekStartupFrame(buf);
  ASSERT_TRUE(startup.ok() && startup->has_value());
  absl::StatusOr<std::optional<Frame>> query =
      PeekFrame(absl::string_view(buf).substr((*startup)->total_bytes), kMaxMessageBytes);
  ASSERT_TRUE(query.ok() && query->has_value());
  EXPECT_EQ((*query)->type, 'Q');
}

TEST(PgFraming, SplitAndCoalescedReads) {
  const std::string stream = std::string(Bytes(captured::kLoginCompletion)) +
                             std::string(Bytes(captured::kSelect1Result)) +
                             std::string(Bytes(captured::kCopyOutResult));
  const std::vector<std::pair<char, std::string>> whole = ReadAll(stream, {stream.size()});
  ASSERT_EQ(whole.size(), 17u + 4u + 6u);
  // Every split point of two reads.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(ReadAll(stream, {cut, stream.size() - cut}), whole) << cut;
  }
  // Random read sizes, fixed seed.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> reads;
    for (size_t total = 0; total < stream.size();) {
      size_t n = std::uniform_int_distribution<size_t>(1, 64)(rng);
      reads.push_back(n);
      total += n;
    }
    ASSERT_EQ(ReadAll(stream, reads), whole) << round;
  }
}

TEST(PgFraming, Truncated) {
  std::string query = EncodeQuery("SELECT 1");
  for (size_t n = 0; n < query.size(); ++n) {
    absl::StatusOr<std::optional<Frame>> f = PeekFrame(query.substr(0, n), kMaxMessageBytes);
    ASSERT_TRUE(f.ok());
    EXPECT_FALSE(f->has_value()) << n;
  }
  // The header alone is enough for PeekHeader.
  absl::StatusOr<std::optional<FrameHeader>> h = PeekHeader(query.substr(0, 5), 100);
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->type, 'Q');
  EXPECT_EQ((*h)->length, 13u);
  EXPECT_EQ((*h)->body_bytes(), 9u);
  EXPECT_EQ((*h)->total_bytes, 14u);
  EXPECT_FALSE(PeekHeader(query.substr(0, 4), 100)->has_value());
  // A startup packet cut short.
  EXPECT_FALSE(PeekStartupFrame(StartupHeader(8) + "\x04\xd2").value().has_value());
}

TEST(PgFraming, OversizedLength) {
  // Rejected as soon as the header is readable, before any body arrives or is buffered.
  absl::StatusOr<std::optional<Frame>> f = PeekFrame(Header('D', 1001), 1000);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(), "pg: message 'D': length 1001 > max 1000");
  EXPECT_FALSE(PeekHeader(Header('D', 1001), 1000).ok());
  EXPECT_TRUE(PeekHeader(Header('D', 1000), 1000).ok());
  // max_len is capped at kMaxMessageBytes.
  EXPECT_TRUE(PeekHeader(Header('d', kMaxMessageBytes), UINT32_MAX).ok());
  absl::StatusOr<std::optional<Frame>> huge = PeekFrame(Header('d', 0x7fffffff), UINT32_MAX);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "pg: message 'd': length 2147483647 > max 1073741823");

  absl::StatusOr<std::optional<Frame>> s = PeekStartupFrame(StartupHeader(70000));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "pg: startup: length 70000 > max 10000");
  EXPECT_TRUE(PeekStartupFrame(StartupHeader(10000)).ok());
  EXPECT_FALSE(PeekStartupFrame(StartupHeader(10001)).ok());
}

TEST(PgFraming, LengthBelowMinimum) {
  absl::StatusOr<std::optional<Frame>> f = PeekFrame(Header('Q', 3), kMaxMessageBytes);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "pg: message 'Q': length 3 < min 4");
  // Lengths are signed on the wire: 0xffffffff is -1, not 4 GiB.
  absl::StatusOr<std::optional<Frame>> neg = PeekFrame(Header('Q', 0xffffffff), UINT32_MAX);
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.status().message(), "pg: message 'Q': length -1 < min 4");
  EXPECT_FALSE(PeekHeader(Header('Q', 0), kMaxMessageBytes).ok());
  // Length 4 is an empty body.
  absl::StatusOr<std::optional<Frame>> empty = PeekFrame(Header('S', 4), kMaxMessageBytes);
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_EQ((*empty)->body, "");

  absl::StatusOr<std::optional<Frame>> s = PeekStartupFrame(StartupHeader(7));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "pg: startup: length 7 < min 8");
  EXPECT_EQ(PeekStartupFrame(StartupHeader(0x80000000)).status().message(),
            "pg: startup: length -2147483648 < min 8");
}

TEST(PgFraming, AcceptsAnyTypeByte) {
  // Framing does not judge the type; unprintable types show as hex in errors.
  for (int type : {0x00, 0x7f, 0xff, int{'!'}, int{'q'}}) {
    std::string m = Header(static_cast<char>(type), 6) + "ab";
    absl::StatusOr<std::optional<Frame>> f = PeekFrame(m, kMaxMessageBytes);
    ASSERT_TRUE(f.ok() && f->has_value()) << type;
    EXPECT_EQ((*f)->type, static_cast<char>(type));
    EXPECT_EQ((*f)->body, "ab");
    EXPECT_EQ(MessageName((*f)->type, true), type == 0 ? "StartupPacket" : "Unknown");
  }
  EXPECT_EQ(PeekFrame(Header('\xff', 2), 100).status().message(),
            "pg: message 0xff: length 2 < min 4");
}

TEST(PgFraming, PeekHeaderLetsAHugeMessageStream) {
  // A 100 MB DataRow: PeekFrame waits for all of it, PeekHeader answers after 5 bytes.
  std::string buf = Header('D', 100'000'000) + std::string(1000, 'x');
  absl::StatusOr<std::optional<Frame>> f = PeekFrame(buf, kMaxMessageBytes);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->has_value());
  absl::StatusOr<std::optional<FrameHeader>> h = PeekHeader(buf, kMaxMessageBytes);
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->total_bytes, 100'000'001u);
  // A per-direction limit below that refuses it instead.
  EXPECT_FALSE(PeekHeader(buf, 16 << 20).ok());
}

TEST(PgFraming, GarbageNeverCrashes) {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> len(0, 40);
  std::uniform_int_distribution<uint32_t> limit(0, 64);
  for (int i = 0; i < 100000; ++i) {
    std::string buf(len(rng), '\0');
    for (char& c : buf) c = static_cast<char>(byte(rng));
    // Small lengths are interesting: make every other buffer's length word plausible.
    if (i % 2 == 0 && buf.size() >= 5) buf[1] = buf[2] = 0;
    const uint32_t max_len = limit(rng);
    absl::string_view rest = buf;
    while (true) {
      absl::StatusOr<std::optional<Frame>> f = PeekFrame(rest, max_len);
      if (!f.ok()) {
        ASSERT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
        break;
      }
      if (!f->has_value()) break;
      ASSERT_LE((*f)->total_bytes, rest.size());
      ASSERT_LE((*f)->length, max_len);
      rest.remove_prefix((*f)->total_bytes);
    }
    absl::StatusOr<std::optional<Frame>> s = PeekStartupFrame(buf);
    if (s.ok() && s->has_value()) {
      ASSERT_LE((*s)->total_bytes, buf.size());
    }
  }
}

}  // namespace
}  // namespace interlock::codec::pg
