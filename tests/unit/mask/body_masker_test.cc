#include "userspace/mask/body_masker.h"

#include <zlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/unit/codec/json/json_check.h"

namespace interlock::mask {
namespace {

using codec::json::testing::Validate;

constexpr char kProfile[] = R"pb(
  name: "pii"
  columns {
    column: "*_ssn"
    mask { style: MASK_STYLE_REDACT }
  }
  detectors { detector: DETECTOR_SSN }
  detectors { detector: DETECTOR_CARD }
  detectors { detector: DETECTOR_EMAIL }
)pb";

std::unique_ptr<Masker> Make(const char* profile = kProfile) {
  v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(profile, &p)) abort();
  auto m = Masker::Create(p, "");
  if (!m.ok()) abort();
  return std::move(m).value();
}

// zlib windowBits for each wrapper.
constexpr int kGzipBits = 16 + MAX_WBITS;
constexpr int kZlibBits = MAX_WBITS;
constexpr int kRawBits = -MAX_WBITS;

std::string Compress(absl::string_view in, int window_bits) {
  z_stream s{};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    abort();
  }
  std::string out(deflateBound(&s, in.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  if (deflate(&s, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

// The decoded form of one stream in the given wrapper, or "error: ..." (also when bytes
// follow its end or it is truncated).
std::string Decompress(absl::string_view in, int window_bits) {
  z_stream s{};
  if (inflateInit2(&s, window_bits) != Z_OK) abort();
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[4096];
  int rc;
  do {
    s.next_out = reinterpret_cast<Bytef*>(buf);
    s.avail_out = sizeof(buf);
    rc = inflate(&s, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - s.avail_out);
  } while (rc == Z_OK && (s.avail_in > 0 || s.avail_out == 0));
  const bool trailing = s.avail_in > 0;
  inflateEnd(&s);
  if (rc == Z_BUF_ERROR || rc == Z_OK) return absl::StrCat("error: truncated after ", out);
  if (rc != Z_STREAM_END) return absl::StrCat("error: zlib ", rc);
  if (trailing) return "error: trailing bytes";
  return out;
}

struct Result {
  std::string out;
  absl::Status status;  // the first error
  uint64_t masked = 0;
  uint64_t decoded = 0;
};

Result MaskBody(const Masker& m, BodyKind kind, ContentCoding coding,
                const std::vector<absl::string_view>& chunks, BodyMaskerOptions options = {}) {
  Result r;
  auto bm = BodyMasker::Create(m, kind, coding, options);
  if (!bm.ok()) {
    r.status = bm.status();
    return r;
  }
  for (absl::string_view c : chunks) {
    r.status = (*bm)->Feed(c, &r.out);
    if (!r.status.ok()) return r;
  }
  r.status = (*bm)->Finish(&r.out);
  r.masked = (*bm)->values_masked();
  r.decoded = (*bm)->decoded_bytes();
  return r;
}

std::vector<absl::string_view> Whole(absl::string_view in) { return {in}; }
std::vector<absl::string_view> Bytes(absl::string_view in) {
  return codec::json::testing::Bytes(in);
}
// Two pieces, cut at `at`.
std::vector<absl::string_view> CutAt(absl::string_view in, size_t at) {
  return {in.substr(0, at), in.substr(at)};
}

constexpr absl::string_view kDoc = R"({
  "user_ssn": "123-45-6789",
  "note": "paid with 4111 1111 1111 1111, mail ann@example.com",
  "cards": [4111111111111111, 42, 1.50],
  "keep": [true, false, null, "ok"]
})";

TEST(ClassifyContentType, Table) {
  const struct {
    const char* ct;
    BodyKind kind;
  } cases[] = {
      {"application/json", BodyKind::kJson},
      {"application/json; charset=utf-8", BodyKind::kJson},
      {"  Application/JSON ;charset=UTF-8 ", BodyKind::kJson},
      {"text/json", BodyKind::kJson},
      {"application/problem+json", BodyKind::kJson},
      {"application/vnd.api+json", BodyKind::kJson},
      {"application/VND.GITHUB.V3+JSON", BodyKind::kJson},
      {"application/x-json", BodyKind::kJson},
      {"application/x-ndjson", BodyKind::kJsonLines},
      {"application/jsonl", BodyKind::kJsonLines},
      {"application/json-seq", BodyKind::kJsonLines},
      {"text/plain", BodyKind::kTextOrJson},
      {"Text/Plain; charset=utf-8", BodyKind::kTextOrJson},
      {"text/html; charset=iso-8859-1", BodyKind::kText},
      {"TEXT/CSV", BodyKind::kText},
      {"text/event-stream", BodyKind::kEventStream},
      {"application/xml", BodyKind::kText},
      {"application/atom+xml", BodyKind::kText},
      {"image/svg+xml", BodyKind::kText},
      {"application/javascript", BodyKind::kText},
      {"application/x-www-form-urlencoded", BodyKind::kText},
      {"application/graphql", BodyKind::kText},
      {"application/yaml", BodyKind::kText},
      {"multipart/form-data; boundary=xyz", BodyKind::kText},
      // No Content-Type, or none that reads: text, or JSON if it is JSON (fail closed).
      {"", BodyKind::kTextOrJson},
      {"   ", BodyKind::kTextOrJson},
      {"; charset=utf-8", BodyKind::kTextOrJson},
      {"json", BodyKind::kTextOrJson},
      {"image/png", BodyKind::kBinary},
      {"audio/mpeg", BodyKind::kBinary},
      {"video/mp4", BodyKind::kBinary},
      {"font/woff2", BodyKind::kBinary},
      {"application/octet-stream", BodyKind::kOctetStream},
      {"Application/Octet-Stream; name=x", BodyKind::kOctetStream},
      {"application/pdf", BodyKind::kBinary},
      {"application/zip", BodyKind::kBinary},
      {"application/gzip", BodyKind::kBinary},
      {"application/protobuf", BodyKind::kBinary},
      {"application/grpc", BodyKind::kBinary},
      // An Office document is a zip, "xml" in its name notwithstanding.
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
       BodyKind::kBinary},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ClassifyContentType(c.ct), c.kind) << "\"" << c.ct << "\"";
  }
}

TEST(ContentTypeCharset, Table) {
  EXPECT_EQ(ContentTypeCharset("text/plain"), "");
  EXPECT_EQ(ContentTypeCharset("text/plain; charset=UTF-16"), "utf-16");
  EXPECT_EQ(ContentTypeCharset("text/plain;CharSet=\"utf-8\" ; format=flowed"), "utf-8");
  EXPECT_EQ(ContentTypeCharset("multipart/mixed; boundary=x; charset = ISO-8859-1"), "iso-8859-1");
  EXPECT_EQ(ContentTypeCharset("text/plain; charsets=utf-16"), "");
}

TEST(MaskableCharset, AsciiCompatibleOnly) {
  for (const char* cs : {"", "utf-8", "utf8", "us-ascii", "iso-8859-1", "iso-8859-15", "latin1", "windows-1252",
                         "cp1251", "koi8-r", "shift_jis", "euc-jp", "euc-kr", "gbk", "gb18030", "big5"}) {
    EXPECT_TRUE(MaskableCharset(cs)) << cs;
  }
  for (const char* cs : {"utf-16", "utf-16le", "utf-16be", "utf-32", "ucs-2", "ucs-4", "utf-7", "ibm037", "cp500",
                         "ebcdic-us", "iso-2022-jp", "x-made-up", "iso-8859-", "latin", "euc-"}) {
    EXPECT_FALSE(MaskableCharset(cs)) << cs;
  }
}

TEST(ParseContentEncoding, Table) {
  const struct {
    const char* value;
    ContentCoding coding;
  } cases[] = {
      {"", ContentCoding::kIdentity},
      {"identity", ContentCoding::kIdentity},
      {" IDENTITY ", ContentCoding::kIdentity},
      {"gzip", ContentCoding::kGzip},
      {"GZip", ContentCoding::kGzip},
      {" x-gzip\t", ContentCoding::kGzip},
      {"deflate", ContentCoding::kDeflate},
      {"Deflate ", ContentCoding::kDeflate},
      {"gzip, gzip", ContentCoding::kUnsupported},
      {"deflate, gzip", ContentCoding::kUnsupported},
      {"br", ContentCoding::kUnsupported},
      {"zstd", ContentCoding::kUnsupported},
      {"compress", ContentCoding::kUnsupported},
      {"x-compress", ContentCoding::kUnsupported},
      {"gzip;q=1", ContentCoding::kUnsupported},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ParseContentEncoding(c.value), c.coding) << "\"" << c.value << "\"";
  }
  EXPECT_EQ(ContentCodingName(ContentCoding::kIdentity), "identity");
  EXPECT_EQ(ContentCodingName(ContentCoding::kGzip), "gzip");
  EXPECT_EQ(ContentCodingName(ContentCoding::kDeflate), "deflate");
  EXPECT_EQ(ContentCodingName(ContentCoding::kUnsupported), "unsupported");
}

TEST(BodyMasker, CreateRefusesBinaryAndUnsupportedCodings) {
  auto m = Make();
  auto bin = BodyMasker::Create(*m, BodyKind::kBinary, ContentCoding::kIdentity);
  EXPECT_EQ(bin.status().code(), absl::StatusCode::kInvalidArgument);
  auto br = BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kUnsupported);
  EXPECT_EQ(br.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kDeflate).ok());
}

TEST(BodyMasker, IdentityJsonIsMasked) {
  auto m = Make();
  const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(kDoc));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NE(r.out.find(R"("user_ssn": "[REDACTED]")"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("4111"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ann@example.com"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"([true, false, null, "ok"])"), std::string::npos) << r.out;
  EXPECT_TRUE(Validate(r.out).ok()) << r.out;
  EXPECT_EQ(r.masked, 4u);  // the ssn rule, two cards, one email
  EXPECT_EQ(r.decoded, kDoc.size());
}

TEST(BodyMasker, IdentityJsonSplitAnywhereGivesTheSameOutput) {
  auto m = Make();
  const Result whole = MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(kDoc));
  ASSERT_TRUE(whole.status.ok());
  EXPECT_EQ(MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Bytes(kDoc)).out, whole.out);
  for (size_t at = 0; at <= kDoc.size(); ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, CutAt(kDoc, at)).out,
              whole.out)
        << at;
  }
}

TEST(BodyMasker, NothingMatchedIsByteIdentical) {
  auto m = Make();
  const std::string json = "\r\n[ {\"a\" : 1e5, \"b\":\"\\u00e9\\n\"} ,[ ], \"x@y\"]\t\n";
  EXPECT_EQ(MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(json)).out, json);
  EXPECT_EQ(MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Bytes(json)).out, json);
  const std::string text = "line one\r\norder 12345 shipped\r\n\r\n\tno newline at the end";
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text)).out, text);
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Bytes(text)).out, text);
}

TEST(BodyMasker, TextMatchesSplitAcrossFeedsAreMasked) {
  auto m = Make();
  const std::string text = "hello\r\ncard: 4111 1111 1111 1111\r\nmail ann@example.com today\r\n";
  const Result whole = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text));
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  // Only the matched spans change; CRLF and everything else stay.
  EXPECT_EQ(whole.out, "hello\r\ncard: [REDACTED]\r\nmail [REDACTED] today\r\n");
  EXPECT_EQ(whole.masked, 2u);
  for (size_t at = 0; at <= text.size(); ++at) {
    const Result r = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, CutAt(text, at));
    EXPECT_EQ(r.out, whole.out) << at;
    EXPECT_EQ(r.masked, 2u) << at;
  }
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Bytes(text)).out, whole.out);
}

TEST(BodyMasker, TextFinalLineWithoutNewlineIsMaskedAtFinish) {
  auto m = Make();
  auto bm = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("a\nssn 078-05-", &out).ok());
  EXPECT_EQ(out, "a\n");  // the unended line waits
  ASSERT_TRUE(bm->Feed("1120", &out).ok());
  EXPECT_EQ(out, "a\n");
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(out.find("078-05-1120"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("a\nssn ", 0), 0u) << out;
  EXPECT_EQ(bm->counts().detectors.at("ssn"), 1u);
}

// A terminal's prompt never ends its line: FlushLine masks and releases what is held.
TEST(BodyMasker, FlushLineReleasesAMaskedPartialLine) {
  auto m = Make();
  auto bm = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("ok\nssn 078-05-1120 $ ", &out).ok());
  EXPECT_EQ(out, "ok\n");
  EXPECT_EQ(bm->held_line_bytes(), 18u);
  ASSERT_TRUE(bm->FlushLine(&out).ok());
  EXPECT_EQ(out, "ok\nssn [REDACTED] $ ");
  EXPECT_EQ(bm->held_line_bytes(), 0u);
  ASSERT_TRUE(bm->FlushLine(&out).ok());  // nothing held: nothing appended
  ASSERT_TRUE(bm->Feed("next\n", &out).ok());
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(out, "ok\nssn [REDACTED] $ next\n");
  EXPECT_EQ(bm->FlushLine(&out).code(), absl::StatusCode::kFailedPrecondition);
  // Only an uncoded text body has lines to flush.
  auto json = *BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kIdentity);
  EXPECT_EQ(json->FlushLine(&out).code(), absl::StatusCode::kFailedPrecondition);
  auto gz = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kGzip);
  EXPECT_EQ(gz->FlushLine(&out).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(BodyMasker, NdjsonLinesStayJson) {
  auto m = Make();
  const std::string text = "{\"card\":4111111111111111}\n{\"n\":\"4111-1111-1111-1111\"}\n";
  const Result r = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text));
  ASSERT_TRUE(r.status.ok());
  const size_t nl = r.out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_TRUE(Validate(r.out.substr(0, nl)).ok()) << r.out;
  EXPECT_TRUE(Validate(r.out.substr(nl + 1)).ok()) << r.out;
  EXPECT_EQ(r.out.find("4111"), std::string::npos) << r.out;
}

// A JSON document labelled text/plain, or not labelled at all, is masked as JSON: field
// rules apply (a value no detector knows) and escapes are read (ann\u0040example.com).
TEST(BodyMasker, JsonLabelledAsTextIsMaskedAsJson) {
  auto m = Make();
  const std::string doc = " \r\n{\"user_ssn\": \"not-a-number\", \"mail\": \"ann\\u0040example.com\", \"n\": 1}\n";
  const Result text = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(doc));
  EXPECT_NE(text.out.find("not-a-number"), std::string::npos) << "the gap this closes: " << text.out;
  const Result whole = MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, Whole(doc));
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  EXPECT_EQ(whole.out, " \r\n{\"user_ssn\": \"[REDACTED]\", \"mail\": \"[REDACTED]\", \"n\": 1}\n");
  EXPECT_EQ(whole.masked, 2u);
  EXPECT_EQ(MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, Bytes(doc)).out, whole.out);
  for (size_t at = 0; at <= doc.size(); ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, CutAt(doc, at)).out, whole.out) << at;
  }
  auto bm = *BodyMasker::Create(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed(doc, &out).ok());
  EXPECT_EQ(out, "") << "held while it is tried as JSON";
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(bm->masked_as(), BodyKind::kJson);
  EXPECT_EQ(out, whole.out);
  // gzip-coded: decoded first, then told apart the same way.
  const Result gz = MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kGzip, Whole(Compress(doc, kGzipBits)));
  ASSERT_TRUE(gz.status.ok()) << gz.status;
  EXPECT_EQ(Decompress(gz.out, kGzipBits), whole.out);
}

// Text that only starts like JSON — a log line "[INFO] ...", two documents one per line —
// is masked as text, exactly as kText masks it, wherever the feeds were cut.
TEST(BodyMasker, TextThatIsNotOneJsonDocumentIsMaskedAsText) {
  auto m = Make();
  for (const std::string& text : {
           std::string("[INFO] paid with 4111 1111 1111 1111\n[INFO] ann@example.com\n"),
           std::string("{\"card\":4111111111111111}\n{\"user_ssn\":\"x\"}\n"),
           std::string("{\"a\": 1} trailing ann@example.com"),
           std::string("plain ann@example.com\n"),
           std::string("   \n\t"),
           std::string(""),
       }) {
    const Result want = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text));
    const Result whole = MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, Whole(text));
    ASSERT_TRUE(whole.status.ok()) << whole.status;
    EXPECT_EQ(whole.out, want.out) << text;
    EXPECT_EQ(whole.masked, want.masked) << text;
    EXPECT_EQ(MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, Bytes(text)).out, want.out) << text;
    for (size_t at = 0; at <= text.size(); ++at) {
      EXPECT_EQ(MaskBody(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, CutAt(text, at)).out, want.out)
          << text << " cut at " << at;
    }
  }
  auto bm = *BodyMasker::Create(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("[INFO] up\nnext", &out).ok());
  EXPECT_EQ(out, "[INFO] up\n") << "text flows a line at a time once it is known not to be JSON";
  EXPECT_EQ(bm->masked_as(), BodyKind::kText);
}

// A document that still reads as JSON after kJsonSniffBytes is JSON from then on: the
// held bytes are released, the rest streams, and a body that breaks later fails closed
// (the agent's response is cut), as a body labelled JSON would.
TEST(BodyMasker, ALongJsonPrefixCommitsAndALaterBreakFailsClosed) {
  auto m = Make();
  std::string head = "[";
  while (head.size() <= kJsonSniffBytes) head += "{\"user_ssn\": \"x\", \"pad\": \"0123456789abcdef\"},";
  auto bm = *BodyMasker::Create(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed(head, &out).ok());
  EXPECT_EQ(bm->masked_as(), BodyKind::kJson);
  EXPECT_GT(out.size(), kJsonSniffBytes / 2) << "released once committed";
  EXPECT_EQ(out.find("\"x\""), std::string::npos);
  EXPECT_LE(bm->buffer_capacity(), 3 * kJsonSniffBytes);
  absl::Status st = bm->Feed("} ann@example.com", &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(out.find("ann@example.com"), std::string::npos);
}

// application/octet-stream is what an export endpoint sends a CSV of customers as: text
// is masked (as text, or as JSON if it is JSON), anything else passes byte for byte.
TEST(BodyMasker, OctetStreamThatIsTextIsMasked) {
  auto m = Make();
  const std::string csv = "id,card,mail\r\n1,4111 1111 1111 1111,ann@example.com\r\n2,caf\xc3\xa9,\tx\f\r\n";
  const Result want = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(csv));
  ASSERT_EQ(want.masked, 2u);
  const Result whole = MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(csv));
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  EXPECT_EQ(whole.out, want.out);
  EXPECT_EQ(whole.masked, 2u);
  for (size_t at = 0; at <= csv.size(); ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, CutAt(csv, at)).out, want.out) << at;
  }
  EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Bytes(csv)).out, want.out);
  const std::string doc = "{\"user_ssn\": \"x\"}";
  auto bm = *BodyMasker::Create(*m, BodyKind::kOctetStream, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed(doc, &out).ok());
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(out, "{\"user_ssn\": \"[REDACTED]\"}");
  EXPECT_EQ(bm->masked_as(), BodyKind::kJson);
  // A long text export streams once its first bytes were seen.
  std::string big;
  while (big.size() < 3 * kOctetSniffBytes) big += "1,4111 1111 1111 1111\n";
  auto stream = *BodyMasker::Create(*m, BodyKind::kOctetStream, ContentCoding::kIdentity);
  out.clear();
  ASSERT_TRUE(stream->Feed(big, &out).ok());
  EXPECT_EQ(stream->masked_as(), BodyKind::kText);
  EXPECT_GT(out.size(), kOctetSniffBytes);
  EXPECT_EQ(out.find("4111"), std::string::npos);
}

TEST(BodyMasker, OctetStreamThatIsBinaryPassesByteForByte) {
  auto m = Make();
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR 4111111111111111 ann@example.com", 47);
  for (const std::string& bin : {png, png + std::string(3 * kOctetSniffBytes, '\x01') + "4111111111111111\n",
                                 std::string("4111111111111111\n\0", 18)}) {
    const Result whole = MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(bin));
    ASSERT_TRUE(whole.status.ok()) << whole.status;
    EXPECT_EQ(whole.out, bin);
    EXPECT_EQ(whole.masked, 0u);
    EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Bytes(bin)).out, bin);
    for (size_t at = 0; at <= std::min<size_t>(bin.size(), 64); ++at) {
      EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, CutAt(bin, at)).out, bin) << at;
    }
  }
  auto bm = *BodyMasker::Create(*m, BodyKind::kOctetStream, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed(png, &out).ok());
  EXPECT_EQ(out, "") << "held until the first bytes are seen";
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(bm->masked_as(), BodyKind::kBinary);
  EXPECT_EQ(out, png);
  // Text in a legacy encoding (Latin-1 here: not UTF-8) is still text.
  const std::string latin1 = "name,card\nJos\xe9,4111111111111111\n";
  EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(latin1)).out,
            MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(latin1)).out);
  EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(latin1)).out.find("4111"),
            std::string::npos);
  // gzip-coded binary: decoded, passed, coded again.
  const Result gz = MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kGzip, Whole(Compress(png, kGzipBits)));
  ASSERT_TRUE(gz.status.ok()) << gz.status;
  EXPECT_EQ(Decompress(gz.out, kGzipBits), png);
}

// Where the profile's field rules cannot reach (refuse_text): a body labelled plain text,
// not labelled, or sent as octet-stream that turns out to be text is refused, with nothing
// of it emitted, however the network cut it; JSON, whitespace and binary are not.
TEST(BodyMasker, RefuseTextRefusesABodyThatTurnsOutToBeText) {
  auto m = Make();
  auto run = [&](BodyKind kind, ContentCoding coding, const std::vector<absl::string_view>& chunks,
                 std::string* out) -> std::unique_ptr<BodyMasker> {
    auto bm = *BodyMasker::Create(*m, kind, coding, {.refuse_text = true});
    absl::Status st;
    for (absl::string_view c : chunks) {
      if (!(st = bm->Feed(c, out)).ok()) break;
    }
    if (st.ok()) st = bm->Finish(out);
    EXPECT_EQ(st.ok(), !bm->refused_text()) << st;
    return bm;
  };
  const std::string csv = "id,user_ssn\n1,123-45-6789\n";
  const std::string doc = "{\"user_ssn\": \"123-45-6789\"}";
  for (BodyKind kind : {BodyKind::kTextOrJson, BodyKind::kOctetStream}) {
    for (const std::string& text : {csv, std::string("  \n") + csv, doc + " trailing", doc + doc, std::string("x")}) {
      for (size_t at = 0; at <= text.size(); ++at) {
        std::string out;
        auto bm = run(kind, ContentCoding::kIdentity, CutAt(text, at), &out);
        EXPECT_TRUE(bm->refused_text()) << BodyKindName(kind) << " " << text << " " << at;
        EXPECT_EQ(out, "") << at;
      }
    }
    std::string out;
    EXPECT_TRUE(run(kind, ContentCoding::kGzip, Whole(Compress(csv, kGzipBits)), &out)->refused_text());
    EXPECT_EQ(out.find("123-45"), std::string::npos);
    // JSON is masked (its field rules apply); whitespace and an empty body are nothing to refuse.
    for (const std::string& fine : {doc, std::string("\n ") + doc + "\n", std::string(" \r\n"), std::string()}) {
      out.clear();
      auto bm = run(kind, ContentCoding::kIdentity, Bytes(fine), &out);
      EXPECT_FALSE(bm->refused_text()) << fine;
      EXPECT_TRUE(bm->decided());
      EXPECT_EQ(out.find("123-45"), std::string::npos);
    }
  }
  // Binary octet-stream is passed (unmasked:binary), not refused as text.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\rIHDR 123-45-6789", 33);
  std::string out;
  auto bin = run(BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(png), &out);
  EXPECT_FALSE(bin->refused_text());
  EXPECT_EQ(out, png);
  // Declared kinds are unaffected: kText was refused at the head, before a BodyMasker.
  out.clear();
  EXPECT_FALSE(run(BodyKind::kJson, ContentCoding::kIdentity, Whole(doc), &out)->refused_text());
  // Undecided while the first bytes are held; decided once they are told apart.
  auto bm = *BodyMasker::Create(*m, BodyKind::kTextOrJson, ContentCoding::kIdentity, {.refuse_text = true});
  out.clear();
  ASSERT_TRUE(bm->Feed("  {\"a\": ", &out).ok());
  EXPECT_FALSE(bm->decided());
  ASSERT_TRUE(bm->Feed("1}", &out).ok());
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_TRUE(bm->decided());
  EXPECT_EQ(out, "  {\"a\": 1}");
}

// UTF-16 and UTF-32 text would walk past the detectors (they read ASCII-compatible bytes:
// "4\0" is not a digit): refused, nothing of it emitted, however the network cut it, in
// every kind that masks — also as octet-stream, where it is not taken for binary.
std::string Utf16Le(absl::string_view ascii) {
  std::string out;
  for (char c : ascii) out.append({c, '\0'});
  return out;
}
std::string Utf16Be(absl::string_view ascii) {
  std::string out;
  for (char c : ascii) out.append({'\0', c});
  return out;
}
std::string Utf32Le(absl::string_view ascii) {
  std::string out;
  for (char c : ascii) out.append({c, '\0', '\0', '\0'});
  return out;
}

TEST(BodyMasker, Utf16AndUtf32TextIsRefusedNotPassed) {
  auto m = Make();
  constexpr BodyMaskerOptions kWide{.refuse_wide_text = true};
  const std::string csv = "name,card\r\nAnn,4111 1111 1111 1111\r\n";
  const std::string doc = R"({"card": "4111111111111111"})";
  const std::vector<std::string> wide = {
      "\xff\xfe" + Utf16Le(csv), "\xfe\xff" + Utf16Be(csv), Utf16Le(csv), Utf16Be(csv),
      std::string("\xff\xfe\0\0", 4) + Utf32Le(csv), Utf32Le(csv), "\xff\xfe" + Utf16Le(doc), Utf16Le(doc)};
  for (BodyKind kind : {BodyKind::kText, BodyKind::kTextOrJson, BodyKind::kJson, BodyKind::kOctetStream,
                        BodyKind::kJsonLines, BodyKind::kEventStream}) {
    for (size_t w = 0; w < wide.size(); ++w) {
      for (size_t at = 0; at <= 8; ++at) {
        auto bm = *BodyMasker::Create(*m, kind, ContentCoding::kIdentity, kWide);
        std::string out;
        absl::Status st;
        for (absl::string_view c : CutAt(wide[w], at)) {
          if (!(st = bm->Feed(c, &out)).ok()) break;
        }
        if (st.ok()) st = bm->Finish(&out);
        EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << BodyKindName(kind) << " " << w << " " << at;
        EXPECT_TRUE(bm->refused_encoding()) << BodyKindName(kind) << " " << w;
        EXPECT_EQ(out, "") << BodyKindName(kind) << " " << w << " " << at;
      }
    }
    const Result gz = MaskBody(*m, kind, ContentCoding::kGzip, Whole(Compress(Utf16Le(csv), kGzipBits)), kWide);
    EXPECT_EQ(gz.status.code(), absl::StatusCode::kFailedPrecondition) << BodyKindName(kind);
  }
  // A NUL further on fails the text (closed) where a line holds it; what came before stays.
  const Result late =
      MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(csv + std::string("x\0y\n", 4)), kWide);
  EXPECT_EQ(late.status.code(), absl::StatusCode::kFailedPrecondition) << late.status;
  for (size_t at = 0; at <= csv.size() + 4; ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, CutAt(csv + std::string("x\0y\n", 4), at), kWide)
                  .status.code(),
              absl::StatusCode::kFailedPrecondition)
        << at;
  }
  // Binary octet-stream with NULs in it is still binary, passed byte for byte.
  const std::string bin("\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0 4111111111111111", 37);
  EXPECT_EQ(MaskBody(*m, BodyKind::kOctetStream, ContentCoding::kIdentity, Whole(bin), kWide).out, bin);
  // Short bodies are checked at Finish: "{}" is JSON, "{\0" is not text.
  EXPECT_TRUE(MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole("{}"), kWide).status.ok());
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(std::string("a\0", 2)), kWide).status.code(),
            absl::StatusCode::kFailedPrecondition);
  // An event stream is not held for its first bytes (its head must reach the agent though
  // nothing follows for a while): decided at once; a NUL line still fails before it is out.
  auto sse = *BodyMasker::Create(*m, BodyKind::kEventStream, ContentCoding::kIdentity, kWide);
  EXPECT_TRUE(sse->decided());
  std::string sse_out;
  ASSERT_TRUE(sse->Feed(": ok\n\n", &sse_out).ok());
  EXPECT_EQ(sse_out, ": ok\n\n");
  EXPECT_FALSE(sse->Feed(Utf16Le("data: 1\n\n"), &sse_out).ok());
  EXPECT_EQ(sse_out, ": ok\n\n");
  // Without the option (a terminal's output), text is not held and NULs pass as they are.
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(Utf16Le("ok\n"))).out, Utf16Le("ok\n"));
  auto term = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(term->Feed("$ ", &out).ok());
  ASSERT_TRUE(term->FlushLine(&out).ok());
  EXPECT_EQ(out, "$ ");
}

// NDJSON / JSON Lines / json-seq: every line is its own JSON document, masked as JSON (field
// rules included), the line ends and record separators kept.
TEST(BodyMasker, JsonLinesAreMaskedAsJsonOneLineAtATime) {
  auto m = Make();
  const std::string lines =
      "{\"user_ssn\": \"x\", \"n\": 4111111111111111}\r\n\n  \n{\"a\": [1, {\"user_ssn\": 2}]}\n\x1e{\"mail\": \"ann@example.com\"}";
  const std::string want =
      "{\"user_ssn\": \"[REDACTED]\", \"n\": \"[REDACTED]\"}\r\n\n  \n{\"a\": [1, {\"user_ssn\": \"[REDACTED]\"}]}\n"
      "\x1e{\"mail\": \"[REDACTED]\"}";
  const Result whole = MaskBody(*m, BodyKind::kJsonLines, ContentCoding::kIdentity, Whole(lines));
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  EXPECT_EQ(whole.out, want);
  EXPECT_EQ(whole.masked, 4u);
  for (size_t at = 0; at <= lines.size(); ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kJsonLines, ContentCoding::kIdentity, CutAt(lines, at)).out, want) << at;
  }
  EXPECT_EQ(MaskBody(*m, BodyKind::kJsonLines, ContentCoding::kIdentity, Bytes(lines)).out, want);
  // A line that is not JSON cannot be masked as one: the body fails, closed.
  const Result bad = MaskBody(*m, BodyKind::kJsonLines, ContentCoding::kIdentity, Whole("{\"a\": 1}\nuser_ssn=1\n"));
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.out, "{\"a\": 1}\n");
}

// Server-sent events (MCP's streamable HTTP, LLM streams): an event's data that is JSON —
// on one data line or spread over several — is masked as JSON, field rules included, each
// line kept where it was; other data and fields by the detectors.
TEST(BodyMasker, EventStreamDataIsMaskedAsJson) {
  auto m = Make();
  const std::string sse =
      "event: message\r\nid: 7\r\ndata: {\"jsonrpc\": \"2.0\", \"result\": {\"user_ssn\": \"x\"}}\r\n\r\n"
      ": keep-alive ann@example.com\n\n"
      "data: {\"a\": 1,\ndata:  \"user_ssn\": 2}\n\n"
      "data: plain 4111 1111 1111 1111\ndata: more\n\n"
      "data: {\"mail\": \"ann@example.com\"}";
  const std::string want =
      "event: message\r\nid: 7\r\ndata: {\"jsonrpc\": \"2.0\", \"result\": {\"user_ssn\": \"[REDACTED]\"}}\r\n\r\n"
      ": keep-alive [REDACTED]\n\n"
      "data: {\"a\": 1,\ndata:  \"user_ssn\": \"[REDACTED]\"}\n\n"
      "data: plain [REDACTED]\ndata: more\n\n"
      "data: {\"mail\": \"[REDACTED]\"}";
  const Result whole = MaskBody(*m, BodyKind::kEventStream, ContentCoding::kIdentity, Whole(sse));
  ASSERT_TRUE(whole.status.ok()) << whole.status;
  EXPECT_EQ(whole.out, want);
  EXPECT_EQ(whole.masked, 5u);
  for (size_t at = 0; at <= sse.size(); ++at) {
    EXPECT_EQ(MaskBody(*m, BodyKind::kEventStream, ContentCoding::kIdentity, CutAt(sse, at)).out, want) << at;
  }
  // An event is released when it ends (its blank line), not held for the stream.
  auto bm = *BodyMasker::Create(*m, BodyKind::kEventStream, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("data: {\"user_ssn\": 1}\n", &out).ok());
  EXPECT_EQ(out, "");
  ASSERT_TRUE(bm->Feed("\n", &out).ok());
  EXPECT_EQ(out, "data: {\"user_ssn\": \"[REDACTED]\"}\n\n");
}

TEST(BodyMasker, OverlongTextLineIsRefused) {
  auto m = Make();
  const std::string line(kMaxTextLineBytes + 1, 'a');
  const std::string want = "body: a text line longer than 1048576 bytes cannot be masked";
  // Whole, as a complete line, and piece by piece.
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(line)).status.message(),
            want);
  const std::string ended = "ok\n" + line + "\n";
  EXPECT_EQ(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(ended)).status.message(),
            want);
  std::vector<absl::string_view> pieces;
  for (size_t i = 0; i < ended.size(); i += 4096) {
    pieces.push_back(absl::string_view(ended).substr(i, 4096));
  }
  const Result r = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, pieces);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(), want);
  // A line of exactly the limit is fine.
  const std::string max(kMaxTextLineBytes, 'a');
  EXPECT_TRUE(
      MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(max + "\n")).status.ok());
  EXPECT_TRUE(MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(max)).status.ok());
}

TEST(BodyMasker, TextWithoutDetectorsIsCopied) {
  auto m = Make(R"pb(columns { column: "*_ssn" })pb");
  const std::string text = std::string(kMaxTextLineBytes + 10, 'x') + " 078-05-1120";
  const Result r = MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.out, text);
}

// A UTF-8 byte order mark before JSON (RFC 8259 section 8.1: a parser may ignore it) is
// kept as it came and the document after it masked — not a body that fails as "not JSON".
TEST(BodyMasker, AUtf8ByteOrderMarkBeforeJsonIsKept) {
  auto m = Make();
  const std::string doc = "\xef\xbb\xbf{\"user_ssn\": \"1\", \"card\": \"4111111111111111\"}";
  const std::string want = "\xef\xbb\xbf{\"user_ssn\": \"[REDACTED]\", \"card\": \"[REDACTED]\"}";
  for (BodyKind kind : {BodyKind::kJson, BodyKind::kTextOrJson, BodyKind::kOctetStream}) {
    for (size_t at = 0; at <= doc.size(); ++at) {
      const Result r = MaskBody(*m, kind, ContentCoding::kIdentity, CutAt(doc, at),
                                {.refuse_text = true, .refuse_wide_text = true});
      ASSERT_TRUE(r.status.ok()) << BodyKindName(kind) << " " << at << " " << r.status;
      EXPECT_EQ(r.out, want) << BodyKindName(kind) << " " << at;
    }
  }
}

TEST(BodyMasker, EmptyBodyIsFine) {
  auto m = Make();
  for (BodyKind kind : {BodyKind::kJson, BodyKind::kText}) {
    for (ContentCoding coding :
         {ContentCoding::kIdentity, ContentCoding::kGzip, ContentCoding::kDeflate}) {
      const Result r = MaskBody(*m, kind, coding, {});
      EXPECT_TRUE(r.status.ok()) << r.status;
      EXPECT_EQ(r.out, "");
      const Result e = MaskBody(*m, kind, coding, {""});
      EXPECT_TRUE(e.status.ok()) << e.status;
      EXPECT_EQ(e.out, "");
    }
  }
  // A gzip stream of nothing is an empty body too, and stays a gzip stream.
  const std::string gz = Compress("", kGzipBits);
  const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(gz));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(Decompress(r.out, kGzipBits), "");
}

TEST(BodyMasker, GzipInGzipOut) {
  auto m = Make();
  const std::string masked =
      MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(kDoc)).out;
  const std::string gz = Compress(kDoc, kGzipBits);
  const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(gz));
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_GE(r.out.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(r.out[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(r.out[1]), 0x8b);
  const std::string decoded = Decompress(r.out, kGzipBits);
  EXPECT_EQ(decoded, masked);
  EXPECT_TRUE(Validate(decoded).ok()) << decoded;
  EXPECT_EQ(r.decoded, kDoc.size());
  EXPECT_EQ(r.masked, 4u);
  // One byte at a time.
  const Result bytes = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Bytes(gz));
  ASSERT_TRUE(bytes.status.ok()) << bytes.status;
  EXPECT_EQ(Decompress(bytes.out, kGzipBits), masked);
}

TEST(BodyMasker, GzipOutputIsFlushedAtEachFeed) {
  auto m = Make();
  std::string text;
  for (int i = 0; i < 200; ++i) absl::StrAppend(&text, "line ", i, " ann@example.com\n");
  const std::string gz = Compress(text, kGzipBits);
  auto bm = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kGzip);
  std::string out;
  ASSERT_TRUE(bm->Feed(absl::string_view(gz).substr(0, gz.size() - 8), &out).ok());
  // Everything but the trailer is in: the output so far inflates to every whole line.
  z_stream s{};
  ASSERT_EQ(inflateInit2(&s, kGzipBits), Z_OK);
  std::string so_far(text.size() * 2, '\0');
  s.next_in = reinterpret_cast<Bytef*>(out.data());
  s.avail_in = static_cast<uInt>(out.size());
  s.next_out = reinterpret_cast<Bytef*>(so_far.data());
  s.avail_out = static_cast<uInt>(so_far.size());
  EXPECT_EQ(inflate(&s, Z_SYNC_FLUSH), Z_OK);
  so_far.resize(s.total_out);
  inflateEnd(&s);
  EXPECT_EQ(std::count(so_far.begin(), so_far.end(), '\n'), 200) << so_far;
  EXPECT_EQ(so_far.find("ann@"), std::string::npos);
  ASSERT_TRUE(bm->Feed(absl::string_view(gz).substr(gz.size() - 8), &out).ok());
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(Decompress(out, kGzipBits), so_far);
  EXPECT_EQ(bm->values_masked(), 200u);
}

TEST(BodyMasker, ConcatenatedGzipMembers) {
  auto m = Make();
  const absl::string_view a = R"({"a": "ann@example.com", )";
  const absl::string_view b = R"("b": [1, 2, 3]})";
  const std::string gz = Compress(a, kGzipBits) + Compress(b, kGzipBits);
  const std::string masked =
      MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(absl::StrCat(a, b))).out;
  for (const auto& chunks : {Whole(gz), Bytes(gz)}) {
    const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, chunks);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(Decompress(r.out, kGzipBits), masked);  // one member out
  }
}

TEST(BodyMasker, DeflateKeepsItsWrapper) {
  auto m = Make();
  const std::string masked =
      MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole(kDoc)).out;
  for (int bits : {kZlibBits, kRawBits}) {
    const std::string in = Compress(kDoc, bits);
    for (const auto& chunks : {Whole(in), Bytes(in), CutAt(in, 1)}) {
      const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kDeflate, chunks);
      ASSERT_TRUE(r.status.ok()) << bits << " " << r.status;
      EXPECT_EQ(Decompress(r.out, bits), masked) << bits;
      const int other = bits == kZlibBits ? kRawBits : kZlibBits;
      EXPECT_NE(Decompress(r.out, other), masked) << bits;
    }
  }
}

TEST(BodyMasker, GzipTextSplitAnywhereGivesTheSameText) {
  auto m = Make();
  std::string text;
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&text, "row ", i, ": ann", i, "@example.com paid 4111-1111-1111-1111\r\n");
  }
  text += "last line 078-05-1120";
  const std::string masked =
      MaskBody(*m, BodyKind::kText, ContentCoding::kIdentity, Whole(text)).out;
  EXPECT_EQ(masked.find("4111"), std::string::npos);
  EXPECT_EQ(masked.find("078-05"), std::string::npos);
  EXPECT_EQ(std::count(masked.begin(), masked.end(), '\n'), 300);
  const std::string gz = Compress(text, kGzipBits);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const Result r = MaskBody(*m, BodyKind::kText, ContentCoding::kGzip,
                              codec::json::testing::RandomSplit(gz, seed));
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(Decompress(r.out, kGzipBits), masked) << seed;
    EXPECT_EQ(r.masked, 601u);
    EXPECT_EQ(r.decoded, text.size());
  }
}

TEST(BodyMasker, DeflateWithAPresetDictionaryIsRefused) {
  auto m = Make();
  z_stream s{};
  ASSERT_EQ(deflateInit(&s, Z_DEFAULT_COMPRESSION), Z_OK);
  const std::string dict = "{\"a\": ";
  ASSERT_EQ(deflateSetDictionary(&s, reinterpret_cast<const Bytef*>(dict.data()),
                                 static_cast<uInt>(dict.size())),
            Z_OK);
  std::string in = "{\"a\": 1}";
  std::string z(256, '\0');
  s.next_in = reinterpret_cast<Bytef*>(in.data());
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(z.data());
  s.avail_out = static_cast<uInt>(z.size());
  ASSERT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  z.resize(s.total_out);
  deflateEnd(&s);
  const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kDeflate, Whole(z));
  EXPECT_EQ(r.status.message(), "body: deflate: a preset dictionary is not supported") << r.status;
}

TEST(BodyMasker, TruncatedGzipIsAnErrorAtFinish) {
  auto m = Make();
  const std::string gz = Compress(kDoc, kGzipBits);
  for (size_t cut : {size_t{1}, size_t{10}, gz.size() / 2, gz.size() - 1}) {
    auto bm = *BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kGzip);
    std::string out;
    ASSERT_TRUE(bm->Feed(absl::string_view(gz).substr(0, cut), &out).ok()) << cut;
    const absl::Status st = bm->Finish(&out);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << cut;
    EXPECT_EQ(st.message().rfind("body: gzip: truncated", 0), 0u) << st;
  }
  // One byte of deflate cannot even tell its wrapper.
  const Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kDeflate, {"x"});
  EXPECT_EQ(r.status.message().rfind("body: deflate: truncated", 0), 0u) << r.status;
}

TEST(BodyMasker, CorruptGzipIsAnError) {
  auto m = Make();
  std::string gz = Compress(kDoc, kGzipBits);
  std::string bad_magic = gz;
  bad_magic[1] = 'x';
  Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(bad_magic));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message(), "body: gzip: incorrect header check") << r.status;
  std::string bad_crc = gz;
  bad_crc[gz.size() - 6] ^= 0x55;  // inside the CRC-32 of the trailer
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(bad_crc));
  EXPECT_EQ(r.status.message(), "body: gzip: incorrect data check") << r.status;
  // Plain text sent as gzip.
  r = MaskBody(*m, BodyKind::kText, ContentCoding::kGzip, Whole("hello world\n"));
  EXPECT_EQ(r.status.message().rfind("body: gzip: ", 0), 0u) << r.status;
}

TEST(BodyMasker, TrailingGarbageAfterGzipIsAnError) {
  auto m = Make();
  const std::string gz = Compress(kDoc, kGzipBits);
  Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(gz + "garbage"));
  EXPECT_EQ(r.status.message(), "body: gzip: incorrect header check") << r.status;
  // One byte is not even a header yet: the error comes at Finish.
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, {gz, "\x1f"});
  EXPECT_EQ(r.status.message(),
            "body: gzip: the bytes after the last member are not a whole gzip member")
      << r.status;
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, {gz, gz.substr(0, 12)});
  EXPECT_EQ(r.status.message(),
            "body: gzip: the bytes after the last member are not a whole gzip member")
      << r.status;
  const std::string z = Compress(kDoc, kZlibBits);
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kDeflate, {z, "x"});
  EXPECT_EQ(r.status.message(), "body: deflate: data after the end of the compressed stream")
      << r.status;
}

TEST(BodyMasker, InvalidJsonPassesTheJsonError) {
  auto m = Make();
  Result r = MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole("[1,]"));
  EXPECT_EQ(r.status.message().rfind("json: offset 3", 0), 0u) << r.status;
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kIdentity, Whole("{\"a\": "));
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status.message().rfind("json: ", 0), 0u) << r.status;
  r = MaskBody(*m, BodyKind::kJson, ContentCoding::kGzip, Whole(Compress("[1,]", kGzipBits)));
  EXPECT_EQ(r.status.message().rfind("json: offset 3", 0), 0u) << r.status;
}

TEST(BodyMasker, ErrorsStick) {
  auto m = Make();
  auto bm = *BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("[1, ", &out).ok());
  const absl::Status st = bm->Feed("}", &out);
  ASSERT_FALSE(st.ok());
  const std::string kept = out;
  EXPECT_EQ(bm->Feed("2]", &out), st);
  EXPECT_EQ(bm->Finish(&out), st);
  EXPECT_EQ(out, kept);

  auto gz = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kGzip);
  const absl::Status gst = gz->Feed("not gzip", &out);
  ASSERT_FALSE(gst.ok());
  EXPECT_EQ(gz->Feed(Compress("x", kGzipBits), &out), gst);
  EXPECT_EQ(gz->Finish(&out), gst);
}

TEST(BodyMasker, FeedAfterFinishIsRefused) {
  auto m = Make();
  auto bm = *BodyMasker::Create(*m, BodyKind::kText, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed("a", &out).ok());
  ASSERT_TRUE(bm->Finish(&out).ok());
  EXPECT_EQ(bm->Feed("b", &out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bm->Finish(&out).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out, "a");
}

TEST(BodyMasker, IdentityBodiesHoldNoZlibState) {
  auto m = Make();
  auto bm = *BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kIdentity);
  std::string out;
  ASSERT_TRUE(bm->Feed(kDoc, &out).ok());
  EXPECT_LT(bm->buffer_capacity(), 4096u);
}

// 50 MB of whitespace inside a JSON array compresses to ~50 KB; decoding it must not hold
// more than one piece at a time.
TEST(BodyMasker, GzipBombStreamsInBoundedBuffers) {
  auto m = Make();
  // The compressed document, built without holding 50 MB.
  std::string gz;
  {
    z_stream s{};
    ASSERT_EQ(deflateInit2(&s, 9, Z_DEFLATED, kGzipBits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    const std::string spaces(1 << 20, ' ');
    char buf[1 << 16];
    const auto put = [&](absl::string_view in, int flush) {
      s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      s.avail_in = static_cast<uInt>(in.size());
      do {
        s.next_out = reinterpret_cast<Bytef*>(buf);
        s.avail_out = sizeof(buf);
        deflate(&s, flush);
        gz.append(buf, sizeof(buf) - s.avail_out);
      } while (s.avail_out == 0);
    };
    put("[\"4111111111111111\",", Z_NO_FLUSH);
    for (int i = 0; i < 50; ++i) put(spaces, Z_NO_FLUSH);
    put("1]", Z_FINISH);
    deflateEnd(&s);
  }
  ASSERT_LT(gz.size(), 200u * 1024);
  auto bm = *BodyMasker::Create(*m, BodyKind::kJson, ContentCoding::kGzip);
  std::string out;
  size_t peak = 0, out_bytes = 0, out_peak = 0;
  for (size_t i = 0; i < gz.size(); i += 16384) {
    ASSERT_TRUE(bm->Feed(absl::string_view(gz).substr(i, 16384), &out).ok());
    peak = std::max(peak, bm->buffer_capacity());
    out_peak = std::max(out_peak, out.size());
    out_bytes += out.size();
    out.clear();
  }
  ASSERT_TRUE(bm->Finish(&out).ok());
  out_bytes += out.size();
  EXPECT_LT(peak, 2u * 1024 * 1024);
  EXPECT_LT(out_peak, 1u * 1024 * 1024);
  EXPECT_EQ(bm->decoded_bytes(), 50u * (1 << 20) + 22);
  EXPECT_EQ(bm->values_masked(), 1u);
  EXPECT_GT(out_bytes, 0u);
}

}  // namespace
}  // namespace interlock::mask
