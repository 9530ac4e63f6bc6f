#include "userspace/proxy/pg/binary_values.h"

#include <charconv>
#include <optional>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace interlock::proxy::pg {

namespace {

// src/include/catalog/pg_type.dat
enum : uint32_t {
  kBool = 16, kBytea = 17, kChar = 18, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kRegproc = 24,
  kText = 25, kOid = 26, kTid = 27, kXid = 28, kCid = 29, kJson = 114, kXml = 142, kPoint = 600, kLseg = 601,
  kPath = 602, kBox = 603, kPolygon = 604, kLine = 628, kCidr = 650, kFloat4 = 700, kFloat8 = 701,
  kCircle = 718, kMacaddr8 = 774, kMoney = 790, kMacaddr = 829, kInet = 869, kBpchar = 1042,
  kVarchar = 1043, kDate = 1082, kTime = 1083, kTimestamp = 1114, kTimestamptz = 1184, kInterval = 1186,
  kTimetz = 1266, kNumeric = 1700, kRegclass = 2205, kUuid = 2950, kPgLsn = 3220, kJsonb = 3802,
  kUnknown = 705,
};

uint32_t Get32(const char* p) {
  return (uint32_t(uint8_t(p[0])) << 24) | (uint32_t(uint8_t(p[1])) << 16) | (uint32_t(uint8_t(p[2])) << 8) |
         uint32_t(uint8_t(p[3]));
}
uint16_t Get16(const char* p) { return static_cast<uint16_t>((uint8_t(p[0]) << 8) | uint8_t(p[1])); }
void Put32(std::string& out, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}

enum class Shape { kText, kNumber, kOpaqueSafe, kStructured };

Shape ShapeOf(uint32_t t) {
  switch (t) {
    case kText: case kVarchar: case kBpchar: case kName: case kUnknown: case kJson: case kJsonb: case kBytea:
    case kXml: case kChar:
      return Shape::kText;
    case kInt2: case kInt4: case kInt8: case kOid: case kMoney: case kFloat4: case kFloat8: case kNumeric:
    case kRegproc: case kRegclass: case kXid: case kCid: case kPgLsn:
      return Shape::kNumber;
    case kBool: case kDate: case kTime: case kTimetz: case kTimestamp: case kTimestamptz: case kInterval:
    case kUuid: case kInet: case kCidr: case kMacaddr: case kMacaddr8: case kPoint: case kLseg: case kPath:
    case kBox: case kPolygon: case kLine: case kCircle: case kTid:
      return Shape::kOpaqueSafe;
    default:
      return Shape::kStructured;  // arrays, records, extension types: decode or scan raw
  }
}

// A number's binary form as the text a text-format result would show (enough of it for
// the detectors: the digits, the sign and the point). False when malformed.
bool NumberToText(uint32_t t, absl::string_view v, std::string* out) {
  out->clear();
  auto int_of = [&](int64_t x) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, x);
    out->assign(buf, r.ptr);
  };
  switch (t) {
    case kInt2:
      if (v.size() != 2) return false;
      int_of(static_cast<int16_t>(Get16(v.data())));
      return true;
    case kInt4:
      if (v.size() != 4) return false;
      int_of(static_cast<int32_t>(Get32(v.data())));
      return true;
    case kOid: case kRegproc: case kRegclass: case kXid: case kCid:
      if (v.size() != 4) return false;
      int_of(static_cast<int64_t>(Get32(v.data())));
      return true;
    case kInt8: case kMoney: case kPgLsn: {
      if (v.size() != 8) return false;
      uint64_t u = (uint64_t(Get32(v.data())) << 32) | Get32(v.data() + 4);
      if (t == kPgLsn) {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, u);
        out->assign(buf, r.ptr);
      } else {
        int_of(static_cast<int64_t>(u));
      }
      return true;
    }
    case kFloat4: {
      if (v.size() != 4) return false;
      uint32_t u = Get32(v.data());
      float f;
      std::memcpy(&f, &u, sizeof f);
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::fixed);
      if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof buf, f);
      out->assign(buf, r.ptr);
      return true;
    }
    case kFloat8: {
      if (v.size() != 8) return false;
      uint64_t u = (uint64_t(Get32(v.data())) << 32) | Get32(v.data() + 4);
      double d;
      std::memcpy(&d, &u, sizeof d);
      char buf[400];
      auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
      if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof buf, d);
      out->assign(buf, r.ptr);
      return true;
    }
    case kNumeric:
      return NumericBinaryToText(v, out);
    default:
      return false;
  }
}

struct Ctx {
  const mask::Masker& m;
  mask::MaskCounts* counts;
};

BinaryMask Mask(const Ctx& c, uint32_t t, absl::string_view v, std::string* out, int depth);

// True when the raw bytes hold something the detectors find.
bool RawMatches(const Ctx& c, absl::string_view v) {
  std::string ignored;
  return c.m.MaskText(v, &ignored, c.counts);
}

// A piece of a composite binary value (an array element, a record field): its type and
// where its bytes are (after its Int32 length; len -1 is NULL).
struct Piece {
  uint32_t type;
  size_t at;
  int32_t len;
};

// Masks each non-NULL piece of `v` as its own type. kRewritten: `out` is `v` with every
// changed piece re-encoded in place (new length, or -1 when it became NULL: `*nulled`);
// kUnchanged otherwise.
BinaryMask RewritePieces(const Ctx& c, absl::string_view v, const std::vector<Piece>& pieces, std::string* out,
                         int depth, bool* nulled) {
  bool changed = false;
  std::string rebuilt, piece;
  size_t copied = 0;
  for (const Piece& f : pieces) {
    if (f.len < 0) continue;
    BinaryMask r = Mask(c, f.type, v.substr(f.at, static_cast<size_t>(f.len)), &piece, depth + 1);
    if (r == BinaryMask::kUnchanged) continue;
    changed = true;
    rebuilt.append(v.data() + copied, f.at - 4 - copied);
    if (r == BinaryMask::kNull) {
      Put32(rebuilt, 0xFFFFFFFFu);
      *nulled = true;
    } else {
      Put32(rebuilt, static_cast<uint32_t>(piece.size()));
      rebuilt.append(piece);
    }
    copied = f.at + static_cast<size_t>(f.len);
  }
  if (!changed) return BinaryMask::kUnchanged;
  rebuilt.append(v.data() + copied, v.size() - copied);
  *out = std::move(rebuilt);
  return BinaryMask::kRewritten;
}

// array_send: int32 ndim, int32 has-nulls, uint32 element type, ndim x (int32 size, int32
// lower bound), then each element as int32 length (-1: NULL) and bytes. nullopt: not an
// array (or not one we can decode).
std::optional<BinaryMask> MaskArray(const Ctx& c, absl::string_view v, std::string* out, int depth) {
  if (v.size() < 12) return std::nullopt;
  int32_t ndim = static_cast<int32_t>(Get32(v.data()));
  uint32_t flags = Get32(v.data() + 4);
  uint32_t elem = Get32(v.data() + 8);
  if (ndim < 0 || ndim > 6 || flags > 1) return std::nullopt;  // MAXDIM
  size_t header = 12 + static_cast<size_t>(ndim) * 8;
  if (v.size() < header) return std::nullopt;
  uint64_t count = ndim == 0 ? 0 : 1;
  for (int i = 0; i < ndim; ++i) {
    int32_t dim = static_cast<int32_t>(Get32(v.data() + 12 + i * 8));
    if (dim < 0) return std::nullopt;
    count *= static_cast<uint64_t>(dim);
    if (count > v.size()) return std::nullopt;  // each element needs at least 4 bytes
  }
  // First pass: the layout must account for every byte.
  std::vector<Piece> elems;
  elems.reserve(static_cast<size_t>(count));
  size_t p = header;
  for (uint64_t i = 0; i < count; ++i) {
    if (v.size() - p < 4) return std::nullopt;
    int32_t len = static_cast<int32_t>(Get32(v.data() + p));
    p += 4;
    if (len < -1 || (len >= 0 && v.size() - p < static_cast<size_t>(len))) return std::nullopt;
    elems.push_back({elem, p, len});
    if (len > 0) p += static_cast<size_t>(len);
  }
  if (p != v.size()) return std::nullopt;
  bool nulled = false;
  BinaryMask r = RewritePieces(c, v, elems, out, depth, &nulled);
  if (r == BinaryMask::kRewritten && nulled) (*out)[7] = 1;  // has-nulls
  return r;
}

// record_send: int32 n, then n x (uint32 type, int32 length (-1: NULL), bytes).
std::optional<BinaryMask> MaskRecord(const Ctx& c, absl::string_view v, std::string* out, int depth) {
  if (v.size() < 4) return std::nullopt;
  int32_t n = static_cast<int32_t>(Get32(v.data()));
  if (n < 0 || static_cast<uint64_t>(n) * 8 > v.size()) return std::nullopt;
  std::vector<Piece> fields;
  size_t p = 4;
  for (int32_t i = 0; i < n; ++i) {
    if (v.size() - p < 8) return std::nullopt;
    uint32_t type = Get32(v.data() + p);
    int32_t len = static_cast<int32_t>(Get32(v.data() + p + 4));
    p += 8;
    if (len < -1 || (len >= 0 && v.size() - p < static_cast<size_t>(len))) return std::nullopt;
    fields.push_back({type, p, len});
    if (len > 0) p += static_cast<size_t>(len);
  }
  if (p != v.size()) return std::nullopt;
  bool nulled = false;
  return RewritePieces(c, v, fields, out, depth, &nulled);
}

BinaryMask Mask(const Ctx& c, uint32_t t, absl::string_view v, std::string* out, int depth) {
  switch (ShapeOf(t)) {
    case Shape::kText: {
      // jsonb's binary form is a version byte (1) and the text.
      bool jsonb = t == kJsonb && !v.empty() && v[0] == 1;
      absl::string_view text = jsonb ? v.substr(1) : v;
      std::string masked;
      if (!c.m.MaskText(text, &masked, c.counts)) return BinaryMask::kUnchanged;
      out->clear();
      if (jsonb) out->push_back('\x01');
      out->append(masked);
      return BinaryMask::kRewritten;
    }
    case Shape::kNumber: {
      std::string text;
      if (!NumberToText(t, v, &text)) return RawMatches(c, v) ? BinaryMask::kNull : BinaryMask::kUnchanged;
      std::string ignored;
      return c.m.MaskText(text, &ignored, c.counts) ? BinaryMask::kNull : BinaryMask::kUnchanged;
    }
    case Shape::kOpaqueSafe:
      return BinaryMask::kUnchanged;
    case Shape::kStructured:
      break;
  }
  if (depth < kMaxBinaryDepth) {
    std::optional<BinaryMask> r = MaskArray(c, v, out, depth);
    if (!r.has_value()) r = MaskRecord(c, v, out, depth);
    if (r.has_value() && *r != BinaryMask::kUnchanged) return *r;
  }
  // Not decoded, or decoded with nothing found element by element: whatever text the raw
  // bytes hold must not get through either.
  return RawMatches(c, v) ? BinaryMask::kNull : BinaryMask::kUnchanged;
}

}  // namespace

bool NumericBinaryToText(absl::string_view v, std::string* out) {
  // numeric_send: int16 ndigits, int16 weight, uint16 sign, int16 dscale, ndigits x int16
  // base-10000 digits; digit i stands for 10000^(weight - i).
  out->clear();
  if (v.size() < 8) return false;
  int ndigits = static_cast<int16_t>(Get16(v.data()));
  int weight = static_cast<int16_t>(Get16(v.data() + 2));
  uint16_t sign = Get16(v.data() + 4);
  int dscale = static_cast<int16_t>(Get16(v.data() + 6));
  if (ndigits < 0 || dscale < 0 || v.size() != 8 + static_cast<size_t>(ndigits) * 2) return false;
  if (sign == 0xC000) {
    *out = "NaN";
    return true;
  }
  if (sign == 0xD000 || sign == 0xF000) {
    *out = sign == 0xD000 ? "Infinity" : "-Infinity";
    return true;
  }
  if (sign != 0 && sign != 0x4000) return false;
  auto digit = [&](int i) -> int {
    if (i < 0 || i >= ndigits) return 0;
    int d = Get16(v.data() + 8 + i * 2);
    return d;
  };
  for (int i = 0; i < ndigits; ++i) {
    if (digit(i) > 9999) return false;
  }
  if (sign == 0x4000) out->push_back('-');
  if (weight < 0) {
    out->push_back('0');
  } else {
    for (int w = weight, i = 0; w >= 0; --w, ++i) {
      char buf[8];
      int d = digit(i);
      if (i == 0) {
        auto r = std::to_chars(buf, buf + sizeof buf, d);
        out->append(buf, r.ptr);
      } else {
        absl::StrAppend(out, absl::Dec(d, absl::kZeroPad4));
      }
    }
  }
  if (dscale > 0) {
    out->push_back('.');
    std::string frac;
    // Fractional group k (1-based) is digit index weight + k.
    for (int k = 1; static_cast<int>(frac.size()) < dscale; ++k) {
      absl::StrAppend(&frac, absl::Dec(digit(weight + k), absl::kZeroPad4));
      if (k > 10000) return false;
    }
    out->append(frac, 0, static_cast<size_t>(dscale));
  }
  return true;
}

bool MaskByteaText(const mask::Masker& m, absl::string_view text, std::string* out, mask::MaskCounts* counts) {
  std::string bytes;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() >= 2 && text[0] == '\\' && text[1] == 'x') {
    if (text.size() % 2 != 0) return false;
    bytes.reserve((text.size() - 2) / 2);
    for (size_t i = 2; i < text.size(); i += 2) {
      int hi = hex(text[i]), lo = hex(text[i + 1]);
      if (hi < 0 || lo < 0) return false;
      bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
  } else {
    // bytea_output = escape: "\\" is a backslash, "\ooo" an octal byte, the rest as is.
    bytes.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text[i] != '\\') {
        bytes.push_back(text[i++]);
      } else if (i + 1 < text.size() && text[i + 1] == '\\') {
        bytes.push_back('\\');
        i += 2;
      } else if (i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' && text[i + 2] >= '0' &&
                 text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
        bytes.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0')));
        i += 4;
      } else {
        return false;
      }
    }
  }
  std::string masked;
  if (!m.MaskText(bytes, &masked, counts)) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  out->assign("\\x");
  for (unsigned char c : masked) {
    out->push_back(kHex[c >> 4]);
    out->push_back(kHex[c & 15]);
  }
  return true;
}

BinaryMask MaskBinaryValue(const mask::Masker& m, uint32_t type_oid, absl::string_view value, std::string* out,
                           mask::MaskCounts* counts) {
  return Mask(Ctx{m, counts}, type_oid, value, out, 0);
}

}  // namespace interlock::proxy::pg
