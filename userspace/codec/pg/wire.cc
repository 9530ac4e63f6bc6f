#include "userspace/codec/pg/wire.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/codec/pg/framing.h"

namespace interlock::codec::pg::internal {
namespace {

std::string Item(absl::string_view what, int index) {
  return index < 0 ? std::string(what) : absl::StrCat(what, " ", index);
}

uint32_t LoadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "interlock: pg codec: %s\n", what);
  std::abort();
}

}  // namespace

absl::StatusOr<Reader> Reader::Create(absl::string_view body, absl::string_view context,
                                      size_t max_body) {
  if (body.size() > max_body) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": body ", body.size(), " bytes > max ", max_body));
  }
  return Reader(body, context);
}

absl::Status Reader::Error(absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(context_, ": ", message));
}

absl::Status Reader::Short(size_t need, absl::string_view what, int index) const {
  return Error(absl::StrCat(Item(what, index), ": need ", need, " bytes, ", rest_.size(), " left"));
}

absl::StatusOr<uint8_t> Reader::Byte(absl::string_view what, int index) {
  if (rest_.empty()) return Short(1, what, index);
  uint8_t v = static_cast<uint8_t>(rest_[0]);
  rest_.remove_prefix(1);
  return v;
}

absl::StatusOr<int16_t> Reader::Int16(absl::string_view what, int index) {
  if (rest_.size() < 2) return Short(2, what, index);
  const auto* u = reinterpret_cast<const unsigned char*>(rest_.data());
  uint16_t v = static_cast<uint16_t>((u[0] << 8) | u[1]);
  rest_.remove_prefix(2);
  return static_cast<int16_t>(v);
}

absl::StatusOr<uint32_t> Reader::Uint32(absl::string_view what, int index) {
  if (rest_.size() < 4) return Short(4, what, index);
  uint32_t v = LoadBe32(rest_.data());
  rest_.remove_prefix(4);
  return v;
}

absl::StatusOr<int32_t> Reader::Int32(absl::string_view what, int index) {
  absl::StatusOr<uint32_t> v = Uint32(what, index);
  if (!v.ok()) return v.status();
  return static_cast<int32_t>(*v);
}

absl::StatusOr<uint16_t> Reader::Count16(absl::string_view what, size_t min_element_bytes) {
  absl::StatusOr<int16_t> v = Int16(what);
  if (!v.ok()) return v.status();
  uint16_t n = static_cast<uint16_t>(*v);
  // n <= 65535 and min_element_bytes is a small constant: no overflow.
  if (size_t{n} * min_element_bytes > rest_.size()) {
    return Error(absl::StrCat(what, " ", n, " needs at least ", size_t{n} * min_element_bytes,
                              " bytes, ", rest_.size(), " left"));
  }
  return n;
}

absl::StatusOr<absl::string_view> Reader::String(absl::string_view what, int index) {
  size_t nul = rest_.find('\0');
  if (nul == absl::string_view::npos) {
    return Error(absl::StrCat(Item(what, index), ": missing string terminator"));
  }
  absl::string_view s = rest_.substr(0, nul);
  rest_.remove_prefix(nul + 1);
  return s;
}

absl::StatusOr<absl::string_view> Reader::Bytes(size_t n, absl::string_view what, int index) {
  if (rest_.size() < n) return Short(n, what, index);
  absl::string_view b = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return b;
}

absl::StatusOr<std::optional<absl::string_view>> Reader::NullableBytes(absl::string_view what,
                                                                       int index) {
  absl::StatusOr<int32_t> len = Int32(what, index);
  if (!len.ok()) return len.status();
  if (*len == -1) return std::optional<absl::string_view>();
  if (*len < 0) return Error(absl::StrCat(Item(what, index), ": length ", *len, " < -1"));
  if (static_cast<size_t>(*len) > rest_.size()) {
    return Error(absl::StrCat(Item(what, index), ": length ", *len, " > remaining ", rest_.size()));
  }
  absl::string_view b = rest_.substr(0, static_cast<size_t>(*len));
  rest_.remove_prefix(b.size());
  return std::optional<absl::string_view>(b);
}

absl::string_view Reader::Rest() {
  absl::string_view r = rest_;
  rest_ = absl::string_view();
  return r;
}

absl::Status Reader::End() const {
  if (rest_.empty()) return absl::OkStatus();
  return Error(absl::StrCat(rest_.size(), " trailing bytes"));
}

Writer::Writer(char type) : max_length_(type == 0 ? kMaxStartupPacketBytes : kMaxMessageBytes) {
  if (type != 0) out_.push_back(type);
  length_at_ = out_.size();
  out_.append(4, '\0');
}

void Writer::Byte(uint8_t v) { out_.push_back(static_cast<char>(v)); }

void Writer::Int16(int16_t v) {
  uint16_t u = static_cast<uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u & 0xff));
}

void Writer::Uint32(uint32_t v) {
  out_.push_back(static_cast<char>(v >> 24));
  out_.push_back(static_cast<char>((v >> 16) & 0xff));
  out_.push_back(static_cast<char>((v >> 8) & 0xff));
  out_.push_back(static_cast<char>(v & 0xff));
}

void Writer::Int32(int32_t v) { Uint32(static_cast<uint32_t>(v)); }

void Writer::Count16(size_t n) {
  if (n > 0xffff) Fatal("element count above 65535");
  Int16(static_cast<int16_t>(static_cast<uint16_t>(n)));
}

void Writer::String(absl::string_view s) {
  // A NUL inside would end the string early on the receiving side, so the peer would see a
  // different message than the one we meant (and policy evaluated): never emit it.
  if (s.find('\0') != absl::string_view::npos) Fatal("NUL inside a String field");
  out_.append(s.data(), s.size());
  out_.push_back('\0');
}

void Writer::Bytes(absl::string_view b) {
  if (b.size() > max_length_) Fatal("message above its maximum length");
  out_.append(b.data(), b.size());
}

void Writer::NullableBytes(const std::optional<absl::string_view>& b) {
  if (!b.has_value()) {
    Int32(-1);
    return;
  }
  if (b->size() > max_length_) Fatal("message above its maximum length");
  Int32(static_cast<int32_t>(b->size()));
  Bytes(*b);
}

std::string Writer::Finish() && {
  size_t length = out_.size() - length_at_;
  if (length > max_length_) Fatal("message above its maximum length");
  uint32_t l = static_cast<uint32_t>(length);
  out_[length_at_] = static_cast<char>(l >> 24);
  out_[length_at_ + 1] = static_cast<char>((l >> 16) & 0xff);
  out_[length_at_ + 2] = static_cast<char>((l >> 8) & 0xff);
  out_[length_at_ + 3] = static_cast<char>(l & 0xff);
  return std::move(out_);
}

std::string TypeForDisplay(char type) {
  unsigned char u = static_cast<unsigned char>(type);
  if (u >= 0x21 && u < 0x7f) return absl::StrCat("'", absl::string_view(&type, 1), "'");
  return absl::StrFormat("0x%02x", u);
}

}  // namespace interlock::codec::pg::internal
