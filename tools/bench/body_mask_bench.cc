// Streams the json_mask_bench document (a 100 MB JSON array of records holding card
// numbers, emails and SSNs under a member-name rule) through mask::BodyMasker as an HTTP
// response body would arrive, in 16 KiB reads, and reports per case the throughput over
// the decoded (plain) bytes and the peak of the masker's own buffers (zlib's state
// included as BodyMasker estimates it, not RSS):
//   json identity  — JsonMasker behind BodyMasker
//   text identity  — the same bytes as text/plain: detectors line by line
//   json gzip      — decode, mask, re-encode (gzip level 1), flushed at every read
// then the per-response cost: many ~1 KiB JSON bodies, each its own BodyMasker (Create, one
// Feed, Finish), identity and gzip.
//   build/tools/bench/body_mask_bench [megabytes]
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "google/protobuf/text_format.h"
#include "userspace/mask/body_masker.h"

namespace {

using interlock::mask::BodyKind;
using interlock::mask::BodyMasker;
using interlock::mask::ContentCoding;

constexpr size_t kRead = 16384;

// The body, produced piece by piece so that 100 MB never sit in memory: "[", `megabytes` of
// records, "0]".
class Document {
 public:
  explicit Document(size_t megabytes) : want_(megabytes * 1000 * 1000) {
    const std::string record =
        R"({"id": 12345, "email": "someone@example.com", "card": 4111111111111111, )"
        R"("user_ssn": "123-45-6789", "note": "paid with 4111-1111-1111-1111", "x": 1.5},)"
        "\n";
    while (block_.size() < 4 * 1024 * 1024) block_ += record;
  }
  // Calls f(piece) for each kRead piece of the body, in order; returns the bytes.
  template <typename F>
  size_t ForEach(F f) const {
    size_t n = 0;
    f(absl::string_view("["));
    while (n < want_) {
      for (size_t i = 0; i < block_.size(); i += kRead) {
        f(absl::string_view(block_).substr(i, kRead));
      }
      n += block_.size();
    }
    f(absl::string_view("0]"));
    return n + 3;
  }

 private:
  size_t want_;
  std::string block_;
};

std::string Gzip(const Document& doc) {
  z_stream s{};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    abort();
  }
  std::string gz;
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
  doc.ForEach([&](absl::string_view piece) { put(piece, Z_NO_FLUSH); });
  put("", Z_FINISH);
  deflateEnd(&s);
  return gz;
}

struct Stats {
  size_t in = 0, out = 0, peak = 0;
  uint64_t decoded = 0, masked = 0;
  double secs = 0;
};

template <typename ForEachPiece>
bool Run(const interlock::mask::Masker& masker, BodyKind kind, ContentCoding coding,
         ForEachPiece for_each, Stats* stats) {
  auto bm = BodyMasker::Create(masker, kind, coding);
  if (!bm.ok()) return false;
  std::string out;
  bool ok = true;
  const auto start = std::chrono::steady_clock::now();
  for_each([&](absl::string_view piece) {
    if (!ok) return;
    absl::Status st = (*bm)->Feed(piece, &out);
    if (!st.ok()) {
      fprintf(stderr, "%s\n", std::string(st.message()).c_str());
      ok = false;
    }
    stats->in += piece.size();
    stats->peak = std::max(stats->peak, (*bm)->buffer_capacity());
    stats->out += out.size();
    out.clear();
  });
  if (!ok || !(*bm)->Finish(&out).ok()) return false;
  stats->out += out.size();
  stats->secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats->decoded = (*bm)->decoded_bytes();
  stats->masked = (*bm)->values_masked();
  return true;
}

void Print(const char* name, const Stats& s) {
  printf(
      "body_mask_bench %-14s %11zu bytes in, %11zu out, %9llu decoded, %.2f s, %6.1f MB/s "
      "(decoded), peak buffers %zu bytes, %llu values masked\n",
      name, s.in, s.out, static_cast<unsigned long long>(s.decoded), s.secs,
      s.decoded / s.secs / 1e6, s.peak, static_cast<unsigned long long>(s.masked));
}

// `n` bodies, each a fresh BodyMasker fed `body` in one read; prints bodies per second.
bool SmallBodies(const interlock::mask::Masker& masker, const char* name, ContentCoding coding,
                 const std::string& body, size_t plain_size, int n) {
  std::string out;
  uint64_t masked = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    auto bm = BodyMasker::Create(masker, BodyKind::kJson, coding);
    if (!bm.ok() || !(*bm)->Feed(body, &out).ok() || !(*bm)->Finish(&out).ok()) return false;
    masked += (*bm)->values_masked();
    out.clear();
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf(
      "body_mask_bench %-14s %d bodies of %zu bytes (%zu on the wire), %.2f s, %.0f bodies/s, "
      "%.2f us/body, %llu values masked\n",
      name, n, plain_size, body.size(), secs, n / secs, secs / n * 1e6,
      static_cast<unsigned long long>(masked));
  return true;
}

std::string GzipString(absl::string_view in) {
  z_stream s{};
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    abort();
  }
  std::string out(deflateBound(&s, in.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  if (deflate(&s, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t megabytes = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  interlock::v1::MaskProfile p;
  if (!google::protobuf::TextFormat::ParseFromString(R"pb(
                                                       columns {
                                                         column: "*ssn"
                                                         mask { style: MASK_STYLE_REDACT }
                                                       }
                                                       detectors { detector: DETECTOR_CARD }
                                                       detectors { detector: DETECTOR_EMAIL }
                                                     )pb",
                                                     &p)) {
    return 1;
  }
  auto masker = interlock::mask::Masker::Create(p, "");
  if (!masker.ok()) return 1;
  const Document doc(megabytes);
  const auto plain = [&](auto f) { doc.ForEach(f); };

  Stats json;
  if (!Run(**masker, BodyKind::kJson, ContentCoding::kIdentity, plain, &json)) return 1;
  Print("json identity", json);
  Stats text;
  if (!Run(**masker, BodyKind::kText, ContentCoding::kIdentity, plain, &text)) return 1;
  Print("text identity", text);

  const std::string gz = Gzip(doc);
  const auto coded = [&](auto f) {
    for (size_t i = 0; i < gz.size(); i += kRead) f(absl::string_view(gz).substr(i, kRead));
  };
  Stats gzip;
  if (!Run(**masker, BodyKind::kJson, ContentCoding::kGzip, coded, &gzip)) return 1;
  Print("json gzip", gzip);

  // ~1 KiB: an API response with a few records, one of them sensitive.
  std::string small = R"({"items": [)";
  for (int i = 0; i < 8; ++i) {
    small += R"({"id": 12345, "name": "Widget", "price": 19.99, "tags": ["a", "b"], )"
             R"("owner": "team-x", "note": "nothing to see"}, )";
  }
  small += R"({"email": "someone@example.com", "user_ssn": "123-45-6789"}], "next": null})";
  if (!SmallBodies(**masker, "1k identity", ContentCoding::kIdentity, small, small.size(),
                   200000)) {
    return 1;
  }
  if (!SmallBodies(**masker, "1k gzip", ContentCoding::kGzip, GzipString(small), small.size(),
                   20000)) {
    return 1;
  }
  return 0;
}
