// chunked.h: ChunkedDecoder (strict chunk-size lines, extensions, trailers, limits, any split)
// and the encoder (AppendChunk / AppendLastChunk round trip).
#include "userspace/codec/http/chunked.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace interlock::codec::http {
namespace {

struct Decoded {
  std::string body;
  std::vector<std::string> trailers;
  bool done = false;
  size_t consumed = 0;
  absl::Status status;
};

// Decodes `in` fed in reads of `step` bytes (0: all at once), keeping unconsumed bytes.
Decoded Decode(absl::string_view in, size_t step = 0) {
  Decoded out;
  ChunkedDecoder decoder;
  std::string buffered;
  size_t offset = 0;
  while (offset < in.size() && !decoder.done()) {
    const size_t n = step == 0 ? in.size() : std::min(step, in.size() - offset);
    absl::StrAppend(&buffered, in.substr(offset, n));
    offset += n;
    absl::string_view view = buffered;
    while (!decoder.done()) {
      absl::StatusOr<ChunkedDecoder::Piece> p = decoder.Decode(view);
      if (!p.ok()) {
        out.status = p.status();
        return out;
      }
      if (p->consumed == 0) break;
      absl::StrAppend(&out.body, p->data);
      if (p->trailer)
        out.trailers.push_back(absl::StrCat(p->trailer->name, "=", p->trailer->value));
      view.remove_prefix(p->consumed);
      out.consumed += p->consumed;
    }
    buffered = std::string(view);
  }
  out.done = decoder.done();
  EXPECT_EQ(out.body.size(), decoder.body_bytes());
  return out;
}

void ExpectRefused(absl::string_view in, absl::string_view message) {
  Decoded d = Decode(in);
  EXPECT_FALSE(d.status.ok()) << absl::CHexEscape(in);
  EXPECT_EQ(d.status.message(), message) << absl::CHexEscape(in);
}

TEST(HttpChunked, DecodesChunksAndTrailers) {
  const std::string in =
      "4\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n"
      "Expires: never\r\nX-Sum:  abc \r\n\r\nNEXT";
  Decoded d = Decode(in);
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.body, "Wikipedia in \r\n\r\nchunks.");
  EXPECT_EQ(d.trailers, (std::vector<std::string>{"Expires=never", "X-Sum=abc"}));
  EXPECT_EQ(d.consumed, in.size() - 4);
}

TEST(HttpChunked, EverySplitGivesTheSameResult) {
  const std::string in = "a;name=value;q=\"x\\\"y\"\r\n0123456789\r\n1\r\nZ\r\n000\r\nT: 1\r\n\r\n";
  Decoded whole = Decode(in);
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  for (size_t step = 1; step <= in.size(); ++step) {
    Decoded d = Decode(in, step);
    EXPECT_TRUE(d.status.ok()) << step << ": " << d.status;
    EXPECT_EQ(d.body, whole.body) << step;
    EXPECT_EQ(d.trailers, whole.trailers) << step;
    EXPECT_EQ(d.consumed, whole.consumed) << step;
    EXPECT_TRUE(d.done) << step;
  }
}

TEST(HttpChunked, NeedsMoreUntilTheFinalCrlf) {
  const std::string in = "3\r\nabc\r\n0\r\n\r\n";
  for (size_t n = 0; n < in.size(); ++n) {
    Decoded d = Decode(in.substr(0, n));
    EXPECT_TRUE(d.status.ok()) << n << ": " << d.status;
    EXPECT_FALSE(d.done) << n;
  }
  EXPECT_TRUE(Decode(in).done);
}

TEST(HttpChunked, RefusesBadSizes) {
  ExpectRefused("0x5\r\nhello\r\n0\r\n\r\n", "http: chunked: invalid character after chunk size");
  ExpectRefused("\r\nhello\r\n", "http: chunked: empty chunk size");
  ExpectRefused(" 5\r\nhello\r\n", "http: chunked: invalid chunk size");
  ExpectRefused("\t5\r\nhello\r\n", "http: chunked: invalid chunk size");
  ExpectRefused("+5\r\nhello\r\n", "http: chunked: invalid chunk size");
  ExpectRefused("-5\r\nhello\r\n", "http: chunked: invalid chunk size");
  ExpectRefused("g\r\n", "http: chunked: invalid chunk size");
  ExpectRefused("5 \r\nhello\r\n", "http: chunked: whitespace in chunk extension");
  ExpectRefused("5z\r\nhello\r\n", "http: chunked: invalid character after chunk size");
}

TEST(HttpChunked, RefusesHugeSizes) {
  Decoded d = Decode("ffffffffffffffff\r\n");
  EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(d.status.message(),
            "http: chunked: chunk size 18446744073709551615 > max 9223372036854775807");
  ExpectRefused("10000000000000000\r\n", "http: chunked: chunk size longer than 16 digits");
  ExpectRefused("00000000000000005\r\n", "http: chunked: chunk size longer than 16 digits");
  // The largest accepted size is only a promise; the decoder streams it.
  Decoded big = Decode("7fffffffffffffff\r\nabc");
  EXPECT_TRUE(big.status.ok()) << big.status;
  EXPECT_EQ(big.body, "abc");
}

TEST(HttpChunked, RefusesWhitespaceInExtensions) {
  ExpectRefused("5 ;x\r\nhello\r\n0\r\n\r\n", "http: chunked: whitespace in chunk extension");
  ExpectRefused("5; x\r\nhello\r\n", "http: chunked: invalid chunk extension name");
  ExpectRefused("5;x =1\r\nhello\r\n", "http: chunked: whitespace in chunk extension");
  ExpectRefused("5;x= 1\r\nhello\r\n", "http: chunked: invalid chunk extension value");
}

TEST(HttpChunked, ValidatesExtensions) {
  EXPECT_TRUE(Decode("5;a;b=c;d=\"e f\"\r\nhello\r\n0;z\r\n\r\n").done);
  ExpectRefused("5;\r\nhello\r\n", "http: chunked: invalid chunk extension name");
  ExpectRefused("5;a=\r\nhello\r\n", "http: chunked: invalid chunk extension value");
  ExpectRefused("5;a=\"x\r\nhello\r\n", "http: chunked: invalid chunk extension value");
  ExpectRefused("5;a=\"x\"y\r\nhello\r\n", "http: chunked: invalid character after chunk size");
  ExpectRefused("5;a=\"\x01\"\r\nhello\r\n", "http: chunked: invalid chunk extension value");
  ExpectRefused("5;a(=b\r\nhello\r\n", "http: chunked: invalid character after chunk size");
}

TEST(HttpChunked, RefusesBareLfAndCr) {
  ExpectRefused("5\nhello\r\n0\r\n\r\n", "http: chunked: bare LF in line");
  ExpectRefused("5\rhello\r\n0\r\n\r\n", "http: chunked: bare CR in line");
  ExpectRefused("5\r\nhello\n0\r\n\r\n", "http: chunked: chunk data not followed by CRLF");
  ExpectRefused("5\r\nhello\rX0\r\n\r\n", "http: chunked: CR not followed by LF after chunk data");
  ExpectRefused("5\r\nhelloXX\r\n", "http: chunked: chunk data not followed by CRLF");
  ExpectRefused("0\r\n\n", "http: chunked: bare LF in line");
  ExpectRefused("0\r\nA: b\n\r\n", "http: chunked: bare LF in line");
}

TEST(HttpChunked, ValidatesTrailers) {
  ExpectRefused("0\r\n b: c\r\n\r\n", "http: chunked: line starts with whitespace (obs-fold)");
  ExpectRefused("0\r\nA : b\r\n\r\n", "http: chunked: whitespace between field name and colon");
  ExpectRefused("0\r\nA: \x01\r\n\r\n", "http: chunked: control character 0x1 in value of A");
  ExpectRefused("0\r\nnocolon\r\n\r\n", "http: chunked: field without colon");
}

TEST(HttpChunked, RefusesOversizedLinesAndTrailers) {
  Decoded d = Decode("5;" + std::string(kMaxChunkLineBytes, 'a') + "\r\n");
  EXPECT_EQ(d.status.message(), "http: chunked: line exceeds 4096 bytes");
  std::string many = "0\r\n";
  for (size_t i = 0; i <= kMaxTrailerFields; ++i) many += "T: v\r\n";
  d = Decode(many + "\r\n");
  EXPECT_EQ(d.status.message(), "http: chunked: more than 32 trailer fields");
  d = Decode("0\r\nT: " + std::string(kMaxTrailerBytes, 'v') + "\r\n\r\n");
  EXPECT_EQ(d.status.message(), "http: chunked: trailers exceed 8192 bytes");
  EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpChunked, StaysFailed) {
  ChunkedDecoder decoder;
  EXPECT_FALSE(decoder.Decode("x\r\n").ok());
  absl::StatusOr<ChunkedDecoder::Piece> again = decoder.Decode("0\r\n\r\n");
  EXPECT_EQ(again.status().message(), "http: chunked: invalid chunk size");
}

TEST(HttpChunked, NothingAfterDone) {
  ChunkedDecoder decoder;
  absl::string_view in = "0\r\n\r\nGET";
  while (!decoder.done()) {
    absl::StatusOr<ChunkedDecoder::Piece> p = decoder.Decode(in);
    ASSERT_TRUE(p.ok());
    in.remove_prefix(p->consumed);
  }
  EXPECT_EQ(in, "GET");
  EXPECT_EQ(decoder.Decode(in)->consumed, 0u);
}

TEST(HttpChunked, EncoderRoundTrips) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::string body;
    std::string wire;
    const int chunks = static_cast<int>(rng() % 5);
    for (int i = 0; i < chunks; ++i) {
      std::string data(rng() % 300, '\0');
      for (char& c : data) c = static_cast<char>(rng());
      body += data;
      AppendChunk(data, &wire);
    }
    ASSERT_TRUE(AppendLastChunk({{"X-Checksum", "abc"}, {"X-Empty", ""}}, &wire).ok());
    for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
      Decoded d = Decode(wire, step);
      ASSERT_TRUE(d.status.ok()) << d.status;
      EXPECT_TRUE(d.done);
      EXPECT_EQ(d.body, body);
      EXPECT_EQ(d.trailers, (std::vector<std::string>{"X-Checksum=abc", "X-Empty="}));
      EXPECT_EQ(d.consumed, wire.size());
    }
  }
}

TEST(HttpChunked, EncoderWritesHexSizes) {
  std::string wire;
  AppendChunk("", &wire);
  EXPECT_EQ(wire, "");
  AppendChunk(std::string(255, 'x'), &wire);
  EXPECT_EQ(wire.substr(0, 4), "ff\r\n");
  wire.clear();
  ASSERT_TRUE(AppendLastChunk({}, &wire).ok());
  EXPECT_EQ(wire, "0\r\n\r\n");
}

TEST(HttpChunked, EncoderRefusesInjectedTrailers) {
  std::string wire = "kept";
  absl::Status st = AppendLastChunk({{"X-A", "b\r\nX-Evil: 1"}}, &wire);
  EXPECT_EQ(st.message(), "http: chunked: trailer: control character in value of X-A");
  EXPECT_EQ(wire, "kept");
  EXPECT_FALSE(AppendLastChunk({{"Bad Name", "v"}}, &wire).ok());
  EXPECT_FALSE(AppendLastChunk({{"X-A", " padded"}}, &wire).ok());
}

}  // namespace
}  // namespace interlock::codec::http
