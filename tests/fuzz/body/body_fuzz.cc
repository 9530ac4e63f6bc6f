// libFuzzer target for mask::BodyMasker (STYLE.md convention 10). The first byte of an input
// picks the kind (bit 0: JSON or text) and the mode (bits 1-3); the rest is the body:
//   mode 0: identity; 1: gzip, 2: zlib deflate, 3: raw deflate — the body as plain text,
//     encoded here; 4: gzip, 5: deflate — the body as wire bytes (mostly corrupt streams).
// Invariants (a violation aborts, which libFuzzer reports as a crash):
//   - identity: masking whole, in random reads and one byte at a time (up to 512 bytes)
//     gives the same output or fails the same way; text keeps its line count;
//   - modes 1-3: accepted exactly when identity is, and the output decodes (in the same
//     wrapper) to the identity output, whole and in random reads;
//   - modes 4-5: whole and in random reads agree on acceptance and on the decoded output;
//   - buffer_capacity() stays under 2 MiB.
//
// Built as body_fuzz (clang, CMake) and body_fuzz_replay (any compiler; ctest runs it over
// corpus/ and crashers/ with tests/fuzz/pg/replay_main.cc).
//   ./body_fuzz -max_len=4096 -max_total_time=600 <scratch corpus dir> corpus/
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "tests/unit/codec/json/json_check.h"
#include "userspace/mask/body_masker.h"

namespace check = interlock::codec::json::testing;
using interlock::mask::BodyKind;
using interlock::mask::BodyMasker;
using interlock::mask::ContentCoding;
using interlock::mask::Masker;

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "body_fuzz: invariant broken: %s\n", what);
    abort();
  }
}

const Masker& TheMasker() {
  static const Masker* m = [] {
    interlock::v1::MaskProfile p;
    const char* text = R"pb(
      columns {
        column: "*ssn*"
        mask { style: MASK_STYLE_REDACT }
      }
      detectors { detector: DETECTOR_SSN }
      detectors { detector: DETECTOR_CARD }
      detectors { detector: DETECTOR_EMAIL }
    )pb";
    if (!google::protobuf::TextFormat::ParseFromString(text, &p)) abort();
    auto r = Masker::Create(p, "");
    if (!r.ok()) abort();
    return r.value().release();
  }();
  return *m;
}

constexpr int kGzipBits = 16 + MAX_WBITS;

std::string Encode(absl::string_view in, int window_bits) {
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

// One whole stream in the given wrapper, nothing after it; nullopt otherwise.
std::optional<std::string> Decode(absl::string_view in, int window_bits) {
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
  } while (rc == Z_OK);
  const bool whole = rc == Z_STREAM_END && s.avail_in == 0;
  inflateEnd(&s);
  if (!whole) return std::nullopt;
  return out;
}

struct Run {
  bool ok = false;
  std::string out;
};

Run Mask(BodyKind kind, ContentCoding coding, const std::vector<absl::string_view>& chunks) {
  Run r;
  auto bm = BodyMasker::Create(TheMasker(), kind, coding);
  Require(bm.ok(), "create");
  for (absl::string_view c : chunks) {
    const bool fed = (*bm)->Feed(c, &r.out).ok();
    Require((*bm)->buffer_capacity() < 2 * 1024 * 1024, "bounded buffers");
    if (!fed) return r;
  }
  r.ok = (*bm)->Finish(&r.out).ok();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const BodyKind kind = (data[0] & 1) != 0 ? BodyKind::kText : BodyKind::kJson;
  const int mode = (data[0] >> 1) & 7;
  const absl::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  uint32_t seed = 2166136261u;  // FNV-1a: the random reads depend only on the input
  for (char c : in) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;

  if (mode >= 4) {
    const ContentCoding coding = mode == 4 ? ContentCoding::kGzip : ContentCoding::kDeflate;
    const Run whole = Mask(kind, coding, {in});
    const Run split = Mask(kind, coding, check::RandomSplit(in, seed));
    Require(whole.ok == split.ok, "wire: split acceptance");
    if (whole.ok && coding == ContentCoding::kGzip) {
      const auto a = Decode(whole.out, kGzipBits), b = Decode(split.out, kGzipBits);
      Require(a.has_value() && b.has_value() && *a == *b, "wire: split output");
    }
    return 0;
  }

  const Run plain = Mask(kind, ContentCoding::kIdentity, {in});
  const Run split = Mask(kind, ContentCoding::kIdentity, check::RandomSplit(in, seed));
  Require(plain.ok == split.ok, "identity: split acceptance");
  if (plain.ok) Require(plain.out == split.out, "identity: split output");
  if (in.size() <= 512) {
    const Run bytes = Mask(kind, ContentCoding::kIdentity, check::Bytes(in));
    Require(bytes.ok == plain.ok && (!plain.ok || bytes.out == plain.out), "identity: bytes");
  }
  if (plain.ok && kind == BodyKind::kText) {
    Require(std::count(in.begin(), in.end(), '\n') ==
                std::count(plain.out.begin(), plain.out.end(), '\n'),
            "text: line count");
  }
  if (mode == 0) return 0;

  const int bits = mode == 1 ? kGzipBits : mode == 2 ? MAX_WBITS : -MAX_WBITS;
  const ContentCoding coding = mode == 1 ? ContentCoding::kGzip : ContentCoding::kDeflate;
  const std::string coded = Encode(in, bits);
  for (const auto& chunks :
       {std::vector<absl::string_view>{coded}, check::RandomSplit(coded, seed ^ 0x5bd1e995u)}) {
    const Run r = Mask(kind, coding, chunks);
    Require(r.ok == plain.ok, "coded: acceptance");
    if (!r.ok) continue;
    // An empty body coded is still a stream; nothing fed at all is no stream.
    const auto decoded = Decode(r.out, bits);
    Require(decoded.has_value() && *decoded == plain.out, "coded: decodes to the identity output");
  }
  return 0;
}
