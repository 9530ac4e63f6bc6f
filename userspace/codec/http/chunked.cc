#include "userspace/codec/http/chunked.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::http {
namespace {

// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4). Returns the
// bytes it spans at the start of `s`, or 0 when `s` does not start with a valid one.
size_t QuotedStringLength(absl::string_view s) {
  if (s.empty() || s[0] != '"') return 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i == s.size() || !IsFieldValueChar(s[i])) return 0;
      continue;
    }
    if (!IsFieldValueChar(c)) return 0;
  }
  return 0;
}

size_t TokenLength(absl::string_view s) {
  size_t n = 0;
  while (n < s.size() && IsTchar(s[n])) ++n;
  return n;
}

// chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), without BWS.
absl::Status CheckExtensions(absl::string_view ext) {
  while (!ext.empty()) {
    if (ext[0] == ' ' || ext[0] == '\t') {
      return absl::InvalidArgumentError("whitespace in chunk extension");
    }
    if (ext[0] != ';') return absl::InvalidArgumentError("invalid character after chunk size");
    ext.remove_prefix(1);
    const size_t name = TokenLength(ext);
    if (name == 0) return absl::InvalidArgumentError("invalid chunk extension name");
    ext.remove_prefix(name);
    if (ext.empty() || ext[0] != '=') continue;
    ext.remove_prefix(1);
    const size_t value = !ext.empty() && ext[0] == '"' ? QuotedStringLength(ext) : TokenLength(ext);
    if (value == 0) return absl::InvalidArgumentError("invalid chunk extension value");
    ext.remove_prefix(value);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> ParseChunkSizeLine(absl::string_view line) {
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < line.size() && IsHexDigit(line[digits])) {
    if (++digits > kMaxChunkSizeDigits) {
      return absl::ResourceExhaustedError(
          absl::StrCat("chunk size longer than ", kMaxChunkSizeDigits, " digits"));
    }
    size = size * 16 + static_cast<uint64_t>(HexValue(line[digits - 1]));
  }
  if (digits == 0) {
    return absl::InvalidArgumentError(line.empty() ? "empty chunk size" : "invalid chunk size");
  }
  if (size > kMaxChunkSize) {
    return absl::ResourceExhaustedError(
        absl::StrCat("chunk size ", size, " > max ", kMaxChunkSize));
  }
  INTERLOCK_RETURN_IF_ERROR(CheckExtensions(line.substr(digits)));
  return size;
}

absl::StatusOr<ChunkedDecoder::Piece> ChunkedDecoder::DecodeSizeLine(absl::string_view in) {
  INTERLOCK_ASSIGN_OR_RETURN(std::optional<Line> line, FindLine(in, kMaxChunkLineBytes));
  if (!line.has_value()) return Piece{};
  INTERLOCK_ASSIGN_OR_RETURN(remaining_, ParseChunkSizeLine(line->content));
  state_ = remaining_ == 0 ? State::kTrailer : State::kData;
  return Piece{.consumed = line->total_bytes};
}

absl::StatusOr<ChunkedDecoder::Piece> ChunkedDecoder::DecodeTrailerLine(absl::string_view in) {
  const size_t budget = kMaxTrailerBytes - trailer_bytes_;
  absl::StatusOr<std::optional<Line>> line =
      budget < 2 ? absl::ResourceExhaustedError("") : FindLine(in, budget - 2);
  if (!line.ok() && line.status().code() == absl::StatusCode::kResourceExhausted) {
    return absl::ResourceExhaustedError(
        absl::StrCat("trailers exceed ", kMaxTrailerBytes, " bytes"));
  }
  if (!line.ok()) return line.status();
  if (!line->has_value()) return Piece{};
  trailer_bytes_ += (*line)->total_bytes;
  if ((*line)->content.empty()) {
    state_ = State::kDone;
    return Piece{.consumed = (*line)->total_bytes};
  }
  if (trailer_fields_ == kMaxTrailerFields) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", kMaxTrailerFields, " trailer fields"));
  }
  INTERLOCK_ASSIGN_OR_RETURN(HeaderField field, ParseFieldLine((*line)->content));
  ++trailer_fields_;
  return Piece{.consumed = (*line)->total_bytes, .trailer = field};
}

ChunkedDecoder::Piece ChunkedDecoder::DecodeData(absl::string_view in) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
  remaining_ -= n;
  body_bytes_ += n;
  if (remaining_ == 0) state_ = State::kDataCr;
  return Piece{.consumed = n, .data = in.substr(0, n)};
}

// The CRLF after chunk data is taken a byte at a time, so that no split needs buffering.
absl::StatusOr<ChunkedDecoder::Piece> ChunkedDecoder::DecodeDataEnd(char byte) {
  const bool cr = state_ == State::kDataCr;
  if (byte != (cr ? '\r' : '\n')) {
    return absl::InvalidArgumentError(cr ? "chunk data not followed by CRLF"
                                         : "CR not followed by LF after chunk data");
  }
  state_ = cr ? State::kDataLf : State::kSize;
  return Piece{.consumed = 1};
}

absl::StatusOr<ChunkedDecoder::Piece> ChunkedDecoder::Decode(absl::string_view in) {
  if (state_ == State::kFailed) return failure_;
  if (in.empty() || state_ == State::kDone) return Piece{};
  absl::StatusOr<Piece> piece = Piece{};
  switch (state_) {
    case State::kSize:
      piece = DecodeSizeLine(in);
      break;
    case State::kData:
      piece = DecodeData(in);
      break;
    case State::kDataCr:
    case State::kDataLf:
      piece = DecodeDataEnd(in[0]);
      break;
    case State::kTrailer:
      piece = DecodeTrailerLine(in);
      break;
    case State::kDone:
    case State::kFailed:
      break;
  }
  if (!piece.ok()) {
    state_ = State::kFailed;
    failure_ = Annotate(piece.status(), "http: chunked");
    return failure_;
  }
  return piece;
}

void AppendChunk(absl::string_view data, std::string* out) {
  if (data.empty()) return;
  absl::StrAppend(out, absl::Hex(data.size()), "\r\n", data, "\r\n");
}

absl::Status AppendLastChunk(absl::Span<const HeaderField> trailers, std::string* out) {
  for (const HeaderField& f : trailers) {
    absl::Status st = ValidateField(f);
    if (!st.ok()) return Annotate(st, "http: chunked: trailer");
  }
  out->append("0\r\n");
  for (const HeaderField& f : trailers) absl::StrAppend(out, f.name, ": ", f.value, "\r\n");
  out->append("\r\n");
  return absl::OkStatus();
}

}  // namespace interlock::codec::http
