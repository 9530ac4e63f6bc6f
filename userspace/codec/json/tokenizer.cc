#include "userspace/codec/json/tokenizer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/status_macros.h"

namespace interlock::codec::json {

std::string FoldKeyCase(absl::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (name.substr(i, 2) == "\xc5\xbf") {  // U+017F LATIN SMALL LETTER LONG S
      out.push_back('s');
      ++i;
    } else if (name.substr(i, 3) == "\xe2\x84\xaa") {  // U+212A KELVIN SIGN
      out.push_back('k');
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}
namespace {

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNumberByte(char c) {
  return IsDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}
bool IsLiteralByte(char c) { return c >= 'a' && c <= 'z'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629 section 4), 0 if invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;  // no UTF-16 surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  }
  return n;
}

absl::Status DecodeError(size_t at, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("byte %d of string: %s", at, what));
}

bool ReadHex4(absl::string_view raw, size_t at, uint32_t* v) {
  if (at + 4 > raw.size()) return false;
  *v = 0;
  for (size_t k = 0; k < 4; ++k) {
    const int h = HexValue(raw[at + k]);
    if (h < 0) return false;
    *v = (*v << 4) | static_cast<uint32_t>(h);
  }
  return true;
}

}  // namespace

bool IsScalarValue(JsonTokenType type) {
  return type == JsonTokenType::kString || type == JsonTokenType::kNumber ||
         type == JsonTokenType::kTrue || type == JsonTokenType::kFalse ||
         type == JsonTokenType::kNull;
}

absl::Status DecodeJsonString(absl::string_view raw, std::string* out) {
  if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') {
    return absl::InvalidArgumentError("not a string");
  }
  const size_t end = raw.size() - 1;
  size_t i = 1;
  while (i < end) {
    const char c = raw[i];
    if (c == '\\') {
      if (i + 1 >= end) return DecodeError(i, "invalid escape");
      const char e = raw[i + 1];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (i + 6 > end || !ReadHex4(raw, i + 2, &cp)) {
            return DecodeError(i, "invalid \\u escape");
          }
          if (cp >= 0xdc00 && cp <= 0xdfff) return DecodeError(i, "lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t lo;
            if (i + 12 > end || raw[i + 6] != '\\' || raw[i + 7] != 'u' ||
                !ReadHex4(raw, i + 8, &lo) || lo < 0xdc00 || lo > 0xdfff) {
              return DecodeError(i, "lone high surrogate");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
          AppendUtf8(cp, out);
          i += 6;
          continue;
        }
        default:
          return DecodeError(i, "invalid escape");
      }
      i += 2;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20) return DecodeError(i, "control character");
    if (c == '"') return DecodeError(i, "unescaped quote");
    const size_t n = Utf8SequenceLength(raw.substr(0, end), i);
    if (n == 0) return DecodeError(i, "invalid utf-8");
    out->append(raw.data() + i, n);
    i += n;
  }
  return absl::OkStatus();
}

bool IsJsonNumber(absl::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < s.size() && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !IsDigit(s[i])) return false;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !IsDigit(s[i])) return false;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  return i == s.size();
}

void AppendPointerToken(absl::string_view name, std::string* out) {
  for (char c : name) {
    if (c == '~') {
      out->append("~0");
    } else if (c == '/') {
      out->append("~1");
    } else {
      out->push_back(c);
    }
  }
}

JsonTokenizer::JsonTokenizer(Options options) : options_(options) {}

size_t JsonTokenizer::buffer_capacity() const {
  return pending_.capacity() + pointer_.capacity() + key_.capacity() + scratch_.capacity() +
         stack_.capacity() * sizeof(Frame);
}

absl::Status JsonTokenizer::Fail(uint64_t offset, absl::string_view what) {
  error_ = absl::InvalidArgumentError(absl::StrFormat("json: offset %d: %s", offset, what));
  return error_;
}

absl::Status JsonTokenizer::Feed(absl::string_view chunk, JsonSink sink) {
  if (!error_.ok()) return error_;
  absl::Status st = Run(chunk, sink);
  if (!st.ok() && error_.ok()) error_ = st;
  return st;
}

absl::Status JsonTokenizer::Finish(JsonSink sink) {
  if (!error_.ok()) return error_;
  if (scalar_ == Scalar::kString) {
    return Fail(offset_, scalar_is_key_ ? "end of input inside a member name"
                                        : "end of input inside a string");
  }
  if (scalar_ != Scalar::kNone) {
    // A number or literal ends at end of input only at the top level; inside a container
    // the missing close is reported below.
    std::string raw = std::move(pending_);
    pending_.clear();
    absl::Status st = EndScalar(raw, scalar_offset_, sink);
    if (!st.ok()) {
      if (error_.ok()) error_ = st;
      return st;
    }
  }
  if (!saw_value_) return Fail(offset_, "empty input");
  if (state_ != State::kDone) return Fail(offset_, "unexpected end of input");
  return absl::OkStatus();
}

void JsonTokenizer::SetElementPointer() {
  Frame& top = stack_.back();
  pointer_.resize(top.pointer_len);
  absl::StrAppend(&pointer_, "/", top.index);
}

absl::Status JsonTokenizer::AfterValue() {
  have_key_ = false;
  if (stack_.empty()) {
    state_ = State::kDone;
  } else {
    state_ = State::kCommaOrEnd;
    ++stack_.back().index;
  }
  return absl::OkStatus();
}

absl::Status JsonTokenizer::EndScalar(absl::string_view raw, uint64_t offset, JsonSink sink) {
  const Scalar kind = scalar_;
  const bool is_key = scalar_is_key_;
  scalar_ = Scalar::kNone;
  JsonToken t{JsonTokenType::kString, raw, offset, pointer_, {}, stack_.size()};
  if (kind == Scalar::kString) {
    scratch_.clear();
    absl::Status st = DecodeJsonString(raw, &scratch_);
    if (!st.ok()) return Fail(offset, st.message());
    if (is_key) {
      Frame& top = stack_.back();
      if (options_.refuse_duplicate_keys &&
          !top.keys.insert(options_.fold_key_case ? FoldKeyCase(scratch_) : scratch_).second) {
        return Fail(offset, absl::StrCat("duplicate key ", raw.substr(0, 200)));
      }
      key_.swap(scratch_);
      have_key_ = true;
      pointer_.resize(top.pointer_len);
      pointer_.push_back('/');
      AppendPointerToken(key_, &pointer_);
      t.type = JsonTokenType::kKey;
      t.pointer = pointer_;
      t.key = key_;
      state_ = State::kColon;
      return sink(t);
    }
  } else if (kind == Scalar::kNumber) {
    if (!IsJsonNumber(raw)) {
      return Fail(offset, absl::StrCat("invalid number ", raw.substr(0, 64)));
    }
    t.type = JsonTokenType::kNumber;
  } else {
    if (raw == "true") {
      t.type = JsonTokenType::kTrue;
    } else if (raw == "false") {
      t.type = JsonTokenType::kFalse;
    } else if (raw == "null") {
      t.type = JsonTokenType::kNull;
    } else {
      return Fail(offset, absl::StrCat("invalid literal ", raw.substr(0, 64)));
    }
  }
  if (have_key_) t.key = key_;
  saw_value_ = true;
  INTERLOCK_RETURN_IF_ERROR(sink(t));
  return AfterValue();
}

absl::Status JsonTokenizer::StartValue(char c, uint64_t offset, JsonSink sink, bool* consumed) {
  *consumed = false;
  if (!stack_.empty() && !stack_.back().object) SetElementPointer();
  if (c == '{' || c == '[') {
    if (stack_.size() >= kMaxDepth) {
      return Fail(offset, absl::StrFormat("nesting deeper than %d", kMaxDepth));
    }
    const bool object = c == '{';
    JsonToken t{object ? JsonTokenType::kBeginObject : JsonTokenType::kBeginArray,
                absl::string_view(object ? "{" : "["),
                offset,
                pointer_,
                {},
                stack_.size()};
    if (have_key_) t.key = key_;
    saw_value_ = true;
    INTERLOCK_RETURN_IF_ERROR(sink(t));
    stack_.push_back(Frame{object, 0, pointer_.size(), {}});
    have_key_ = false;
    state_ = object ? State::kKeyOrEnd : State::kValueOrEnd;
    *consumed = true;
    return absl::OkStatus();
  }
  if (c == '"') {
    scalar_ = Scalar::kString;
  } else if (c == '-' || IsDigit(c)) {
    scalar_ = Scalar::kNumber;
  } else if (c == 't' || c == 'f' || c == 'n') {
    scalar_ = Scalar::kLiteral;
  } else if (c == ']' || c == '}') {
    return Fail(offset, absl::StrFormat("'%c' where a value belongs (a trailing comma?)", c));
  } else if (c == '/') {
    return Fail(offset, "comments are not JSON");
  } else {
    return Fail(offset, absl::StrFormat("unexpected character 0x%02x where a value belongs",
                                        static_cast<unsigned char>(c)));
  }
  scalar_is_key_ = false;
  scalar_offset_ = offset;
  scalar_len_ = 0;
  in_escape_ = false;
  return absl::OkStatus();
}

absl::Status JsonTokenizer::Run(absl::string_view chunk, JsonSink sink) {
  size_t i = 0;
  const size_t n = chunk.size();
  const uint64_t base = offset_;
  offset_ += n;
  while (i < n) {
    if (scalar_ != Scalar::kNone) {
      // Continue the scalar from i; start is where its bytes in this chunk begin.
      const size_t start = i;
      bool done = false;
      size_t end = i;  // one past the scalar's last byte in this chunk
      if (scalar_ == Scalar::kString) {
        // The opening quote is counted when the scalar starts (start may point at it).
        for (; i < n; ++i) {
          const char c = chunk[i];
          if (scalar_len_ + (i - start) == 0) continue;  // the opening quote
          if (in_escape_) {
            in_escape_ = false;
          } else if (c == '\\') {
            in_escape_ = true;
          } else if (c == '"') {
            ++i;
            done = true;
            break;
          } else if (static_cast<unsigned char>(c) < 0x20) {
            return Fail(base + i, absl::StrFormat("control character 0x%02x in a string",
                                                  static_cast<unsigned char>(c)));
          }
        }
        end = i;
      } else {
        const bool number = scalar_ == Scalar::kNumber;
        while (i < n && (number ? IsNumberByte(chunk[i]) : IsLiteralByte(chunk[i]))) ++i;
        end = i;
        done = i < n;
      }
      const size_t len = scalar_len_ + (end - start);
      if (len > kMaxTokenBytes) {
        return Fail(scalar_offset_, absl::StrFormat("token longer than %d bytes", kMaxTokenBytes));
      }
      if (!done) {
        pending_.append(chunk.data() + start, end - start);
        scalar_len_ = len;
        continue;
      }
      scalar_len_ = len;
      if (pending_.empty()) {
        INTERLOCK_RETURN_IF_ERROR(
            EndScalar(chunk.substr(start, end - start), scalar_offset_, sink));
      } else {
        pending_.append(chunk.data() + start, end - start);
        std::string raw = std::move(pending_);
        pending_.clear();
        absl::Status st = EndScalar(raw, scalar_offset_, sink);
        if (raw.capacity() <= 64 * 1024) pending_.swap(raw);  // keep a small buffer
        pending_.clear();
        INTERLOCK_RETURN_IF_ERROR(st);
      }
      continue;
    }
    const char c = chunk[i];
    const uint64_t at = base + i;
    if (IsWhitespace(c)) {
      const size_t start = i;
      while (i < n && IsWhitespace(chunk[i])) ++i;
      INTERLOCK_RETURN_IF_ERROR(sink(JsonToken{JsonTokenType::kWhitespace,
                                               chunk.substr(start, i - start),
                                               base + start,
                                               {},
                                               {},
                                               stack_.size()}));
      continue;
    }
    const auto punct = [&](JsonTokenType type) {
      return sink(JsonToken{type, chunk.substr(i, 1), at, {}, {}, stack_.size()});
    };
    const auto close = [&](bool object) -> absl::Status {
      if (stack_.empty() || stack_.back().object != object) {
        return Fail(at, absl::StrFormat("unbalanced '%c'", c));
      }
      pointer_.resize(stack_.back().pointer_len);
      stack_.pop_back();
      INTERLOCK_RETURN_IF_ERROR(
          sink(JsonToken{object ? JsonTokenType::kEndObject : JsonTokenType::kEndArray,
                         chunk.substr(i, 1),
                         at,
                         pointer_,
                         {},
                         stack_.size()}));
      return AfterValue();
    };
    const auto start_key = [&]() {
      scalar_ = Scalar::kString;
      scalar_is_key_ = true;
      scalar_offset_ = at;
      scalar_len_ = 0;
      in_escape_ = false;
    };
    switch (state_) {
      case State::kDone:
        return Fail(at, "data after the top-level value");
      case State::kValueOrEnd:
        if (c == ']') {
          INTERLOCK_RETURN_IF_ERROR(close(false));
          ++i;
          continue;
        }
        [[fallthrough]];
      case State::kValue: {
        bool consumed;
        INTERLOCK_RETURN_IF_ERROR(StartValue(c, at, sink, &consumed));
        if (consumed) ++i;
        continue;  // a scalar is read from i by the loop
      }
      case State::kKeyOrEnd:
        if (c == '}') {
          INTERLOCK_RETURN_IF_ERROR(close(true));
          ++i;
          continue;
        }
        if (c != '"') return Fail(at, "expected a member name or '}'");
        start_key();
        continue;
      case State::kKey:
        if (c == '}') return Fail(at, "'}' after ',' (trailing comma)");
        if (c != '"') return Fail(at, "expected a member name after ','");
        start_key();
        continue;
      case State::kColon:
        if (c != ':') return Fail(at, "expected ':' after a member name");
        INTERLOCK_RETURN_IF_ERROR(punct(JsonTokenType::kColon));
        state_ = State::kValue;
        ++i;
        continue;
      case State::kCommaOrEnd:
        if (c == ',') {
          INTERLOCK_RETURN_IF_ERROR(punct(JsonTokenType::kComma));
          state_ = stack_.back().object ? State::kKey : State::kValue;
          ++i;
          continue;
        }
        if (c == '}' || c == ']') {
          INTERLOCK_RETURN_IF_ERROR(close(c == '}'));
          ++i;
          continue;
        }
        return Fail(at, "expected ',' or the end of the container");
    }
  }
  return absl::OkStatus();
}

}  // namespace interlock::codec::json
