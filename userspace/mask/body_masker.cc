#include "userspace/mask/body_masker.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/common/status_macros.h"

namespace interlock::mask {
namespace {

// zlib's own allocations, estimated from zlib.h's "Memory usage" notes (windowBits 15,
// memLevel 8) plus its state structs: inflate 32 KiB window + ~7 KiB; deflate
// (1 << 17) + (1 << 17) + ~6 KiB.
constexpr size_t kInflateStateBytes = (32 + 7) * 1024;
constexpr size_t kDeflateStateBytes = (256 + 6) * 1024;
// Re-encoding happens on the response path of every coded body: speed over ratio.
constexpr int kDeflateLevel = Z_BEST_SPEED;
constexpr int kMemLevel = 8;

// The zlib stream wrappers (zlib.h, inflateInit2/deflateInit2 windowBits).
enum class Wrapper { kGzip, kZlib, kRaw };

int WindowBits(Wrapper w) {
  switch (w) {
    case Wrapper::kGzip:
      return 16 + MAX_WBITS;
    case Wrapper::kZlib:
      return MAX_WBITS;
    case Wrapper::kRaw:
      return -MAX_WBITS;
  }
  return MAX_WBITS;
}

// RFC 1950 section 2.2: CMF (CM = 8, deflate) and FLG such that CMF*256 + FLG is a
// multiple of 31. Servers that send raw deflate (RFC 1951) for "deflate" are common enough
// (old IIS, some frameworks) that both are accepted. A raw stream cannot pass for zlib in
// practice: its low nibble 8 would be a stored block (BTYPE 00) with a padding bit set,
// which encoders never write.
bool LooksLikeZlibHeader(unsigned char b0, unsigned char b1) {
  return (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && (b0 * 256 + b1) % 31 == 0;
}

absl::Status ZlibError(absl::string_view coding, const z_stream& s, int rc) {
  return absl::InvalidArgumentError(
      absl::StrCat("body: ", coding, ": ", s.msg != nullptr ? s.msg : zError(rc)));
}

// Grows *out geometrically to take `n` more bytes (a bare reserve(size + n) per call would
// make a caller's accumulating buffer reallocate on every Feed).
void ReserveFor(std::string* out, size_t n) {
  if (out->capacity() - out->size() < n) {
    out->reserve(std::max(out->size() + n, 2 * out->capacity()));
  }
}

bool OneOf(absl::string_view s, std::initializer_list<absl::string_view> names) {
  for (absl::string_view n : names) {
    if (absl::EqualsIgnoreCase(s, n)) return true;
  }
  return false;
}

}  // namespace

// One z_stream each, ended by the destructor. z_stream must not move once initialized
// (zlib's state points back at it), hence heap-held by BodyMasker.
class BodyMasker::Inflater {
 public:
  ~Inflater() {
    if (live) inflateEnd(&s);
  }
  z_stream s{};
  bool live = false;
  bool ended = false;        // at the end of a gzip member / the deflate stream
  bool member_done = false;  // gzip: a whole member has been read
  Wrapper wrapper = Wrapper::kGzip;
  // deflate: the first bytes, until there are two to tell zlib from raw.
  unsigned char head[2] = {0, 0};
  size_t head_len = 0;
};

class BodyMasker::Deflater {
 public:
  ~Deflater() {
    if (live) deflateEnd(&s);
  }
  z_stream s{};
  bool live = false;
};

BodyKind ClassifyContentType(absl::string_view content_type) {
  absl::string_view mt = content_type.substr(0, content_type.find(';'));
  mt = absl::StripAsciiWhitespace(mt);
  if (mt.empty()) return BodyKind::kTextOrJson;
  const size_t slash = mt.find('/');
  if (slash == absl::string_view::npos || slash == 0 || slash + 1 == mt.size()) {
    return BodyKind::kTextOrJson;  // not a media type: fail closed
  }
  const absl::string_view type = absl::StripAsciiWhitespace(mt.substr(0, slash));
  const absl::string_view sub = absl::StripAsciiWhitespace(mt.substr(slash + 1));
  // RFC 6839 section 3.1: the +json structured syntax suffix.
  if (absl::EndsWithIgnoreCase(sub, "+json")) return BodyKind::kJson;
  if ((absl::EqualsIgnoreCase(type, "application") && OneOf(sub, {"json", "x-json"})) ||
      (absl::EqualsIgnoreCase(type, "text") && absl::EqualsIgnoreCase(sub, "json"))) {
    return BodyKind::kJson;
  }
  if (absl::EqualsIgnoreCase(type, "text") && absl::EqualsIgnoreCase(sub, "plain")) return BodyKind::kTextOrJson;
  if (absl::EqualsIgnoreCase(type, "application") && absl::EqualsIgnoreCase(sub, "octet-stream")) {
    return BodyKind::kOctetStream;
  }
  if (absl::EqualsIgnoreCase(type, "text") && absl::EqualsIgnoreCase(sub, "event-stream")) return BodyKind::kEventStream;
  if (OneOf(type, {"text", "multipart"})) return BodyKind::kText;
  if (absl::EndsWithIgnoreCase(sub, "+xml")) return BodyKind::kText;
  if (absl::EqualsIgnoreCase(type, "application") &&
      OneOf(sub, {"x-ndjson", "ndjson", "jsonl", "x-jsonlines", "json-seq"})) {
    return BodyKind::kJsonLines;  // several JSON documents, one per line
  }
  if (absl::EqualsIgnoreCase(type, "application") &&
      OneOf(sub, {"xml", "javascript", "x-javascript", "ecmascript", "x-www-form-urlencoded", "graphql", "yaml",
                  "x-yaml", "csv", "sql"})) {
    return BodyKind::kText;
  }
  return BodyKind::kBinary;
}

std::string ContentTypeCharset(absl::string_view content_type) {
  for (absl::string_view param : absl::StrSplit(content_type, ';')) {
    const size_t eq = param.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(param.substr(0, eq)), "charset")) continue;
    absl::string_view value = absl::StripAsciiWhitespace(param.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    return absl::AsciiStrToLower(value);
  }
  return "";
}

bool MaskableCharset(absl::string_view charset) {
  if (charset.empty()) return true;
  static constexpr absl::string_view kExact[] = {
      "utf-8", "utf8", "us-ascii", "ascii", "shift_jis", "sjis", "windows-31j", "cp932", "gb2312",
      "gbk", "gb18030", "big5", "big5-hkscs", "tis-620", "koi8-r", "koi8-u", "cp1250", "cp1251",
      "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258"};
  for (absl::string_view e : kExact) {
    if (charset == e) return true;
  }
  static constexpr absl::string_view kPrefixes[] = {"iso-8859-", "iso8859-", "iso_8859-", "latin", "windows-125",
                                                    "euc-"};
  for (absl::string_view p : kPrefixes) {
    if (absl::StartsWith(charset, p) && charset.size() > p.size()) return true;
  }
  return false;
}

absl::string_view BodyKindName(BodyKind kind) {
  switch (kind) {
    case BodyKind::kJson:
      return "json";
    case BodyKind::kText:
      return "text";
    case BodyKind::kTextOrJson:
      return "text-or-json";
    case BodyKind::kOctetStream:
      return "octet-stream";
    case BodyKind::kJsonLines:
      return "json-lines";
    case BodyKind::kEventStream:
      return "event-stream";
    case BodyKind::kBinary:
      return "binary";
  }
  return "binary";
}

ContentCoding ParseContentEncoding(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty() || absl::EqualsIgnoreCase(value, "identity")) return ContentCoding::kIdentity;
  if (absl::EqualsIgnoreCase(value, "gzip") || absl::EqualsIgnoreCase(value, "x-gzip")) {
    return ContentCoding::kGzip;
  }
  if (absl::EqualsIgnoreCase(value, "deflate")) return ContentCoding::kDeflate;
  return ContentCoding::kUnsupported;
}

absl::string_view ContentCodingName(ContentCoding c) {
  switch (c) {
    case ContentCoding::kIdentity:
      return "identity";
    case ContentCoding::kGzip:
      return "gzip";
    case ContentCoding::kDeflate:
      return "deflate";
    case ContentCoding::kUnsupported:
      return "unsupported";
  }
  return "unsupported";
}

absl::StatusOr<std::unique_ptr<BodyMasker>> BodyMasker::Create(const Masker& masker, BodyKind kind,
                                                               ContentCoding coding, BodyMaskerOptions options) {
  if (kind == BodyKind::kBinary) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: a ", BodyKindName(kind), " body is not masked"));
  }
  if (coding == ContentCoding::kUnsupported) {
    return absl::InvalidArgumentError("body: unsupported content coding");
  }
  return std::unique_ptr<BodyMasker>(new BodyMasker(masker, kind, coding, options));
}

BodyMasker::BodyMasker(const Masker& masker, BodyKind kind, ContentCoding coding, BodyMaskerOptions options)
    : masker_(masker),
      kind_(kind),
      coding_(coding),
      text_passthrough_((kind == BodyKind::kText || kind == BodyKind::kTextOrJson || kind == BodyKind::kOctetStream) &&
                        !masker.has_detectors()),
      options_(options) {
  // Without the wide-text check the first bytes are not held.
  // An event stream is UTF-8 by definition and may send nothing for minutes after its
  // head (an MCP server's GET stream): its first bytes are not waited for — a NUL in any
  // of its lines still fails it before that line is emitted.
  start_checked_ = !options_.refuse_wide_text || kind_ == BodyKind::kEventStream;
  if (kind_ == BodyKind::kJson) json_.emplace(masker_);
  if (kind_ == BodyKind::kTextOrJson) sniff_ = Sniff::kLeadingSpace;
  if (kind_ == BodyKind::kOctetStream) sniff_ = Sniff::kOctetHead;
  if (coding_ != ContentCoding::kIdentity) inflater_ = std::make_unique<Inflater>();
}

BodyMasker::~BodyMasker() = default;

const MaskCounts& BodyMasker::counts() const { return json_ && sniff_ != Sniff::kTrial ? json_->counts() : counts_; }

BodyKind BodyMasker::masked_as() const {
  if (sniff_ == Sniff::kBinary) return BodyKind::kBinary;
  if (kind_ == BodyKind::kJsonLines) return BodyKind::kJsonLines;
  if (kind_ == BodyKind::kEventStream) return BodyKind::kEventStream;
  return kind_ == BodyKind::kJson || sniff_ == Sniff::kJson ? BodyKind::kJson : BodyKind::kText;
}

bool BodyMasker::decided() const {
  if (finished_) return true;
  if (!start_checked_ && kind_ != BodyKind::kOctetStream) return false;
  return sniff_ != Sniff::kOctetHead && sniff_ != Sniff::kLeadingSpace && sniff_ != Sniff::kTrial;
}

size_t BodyMasker::buffer_capacity() const {
  size_t n = line_.capacity() + masked_.capacity() + scratch_.capacity() + plain_.capacity() +
             trial_in_.capacity() + trial_out_.capacity() + start_.capacity();
  if (json_) n += json_->buffer_capacity();
  if (inflater_ != nullptr && inflater_->live) n += kInflateStateBytes;
  if (deflater_ != nullptr && deflater_->live) n += kDeflateStateBytes;
  return n;
}

absl::Status BodyMasker::Feed(absl::string_view chunk, std::string* out) {
  if (finished_) return absl::FailedPreconditionError("body: feed after finish");
  if (!error_.ok()) return error_;
  if (chunk.empty()) return absl::OkStatus();
  fed_bytes_ += chunk.size();
  absl::Status st;
  if (coding_ == ContentCoding::kIdentity) {
    ReserveFor(out, chunk.size());
    st = FeedPlain(chunk, out);
  } else {
    st = FeedCoded(chunk, out);
  }
  if (!st.ok()) error_ = st;
  return st;
}

absl::Status BodyMasker::Finish(std::string* out) {
  if (finished_) return absl::FailedPreconditionError("body: finish called twice");
  if (!error_.ok()) return error_;
  finished_ = true;
  absl::Status st;
  if (fed_bytes_ == 0) {
    // No body at all (204, 304, Content-Length: 0): nothing to mask, nothing to encode.
  } else if (coding_ == ContentCoding::kIdentity) {
    st = FinishPlain(out);
  } else {
    st = FinishCoded(out);
  }
  if (!st.ok()) error_ = st;
  return st;
}

namespace {

// A UTF-16 or UTF-32 byte order mark (UTF-32LE's begins as UTF-16LE's).
bool HasWideBom(absl::string_view head) {
  return absl::StartsWith(head, absl::string_view("\xfe\xff", 2)) ||
         absl::StartsWith(head, absl::string_view("\xff\xfe", 2)) ||
         absl::StartsWith(head, absl::string_view("\0\0\xfe\xff", 4));
}

// UTF-16 or UTF-32 text without a byte order mark: for a code unit width w of 2 or 4, one
// byte position of each unit (the low byte of mostly-ASCII text) is almost never NUL and
// the others mostly are.
bool LooksLikeWideText(absl::string_view head) {
  for (size_t w : {size_t{2}, size_t{4}}) {
    if (head.size() < 2 * w) continue;
    for (size_t k = 0; k < w; ++k) {
      size_t low = 0, low_nul = 0, other = 0, other_nul = 0;
      for (size_t i = 0; i < head.size(); ++i) {
        const bool nul = head[i] == '\0';
        if (i % w == k) {
          ++low;
          low_nul += nul;
        } else {
          ++other;
          other_nul += nul;
        }
      }
      if (low_nul * 20 <= low && other_nul * 2 >= other) return true;
    }
  }
  return false;
}

// RFC 8259 section 8.1: a JSON parser may ignore a UTF-8 byte order mark; it is kept in the
// output as it came, and what follows it is masked.
constexpr absl::string_view kUtf8Bom = "\xef\xbb\xbf";

// A UTF-8 byte order mark at the start of `held` goes to *out as it came.
void MoveLeadingBom(std::string* held, std::string* out) {
  if (!absl::StartsWith(*held, kUtf8Bom)) return;
  out->append(kUtf8Bom.data(), kUtf8Bom.size());
  held->erase(0, kUtf8Bom.size());
}

constexpr absl::string_view kWideText =
    "body: UTF-16 or UTF-32 text, which the detectors cannot read (they read ASCII-compatible text)";

}  // namespace

absl::Status BodyMasker::FeedPlain(absl::string_view plain, std::string* out) {
  decoded_bytes_ += plain.size();
  if (!start_checked_ && kind_ != BodyKind::kOctetStream) {
    start_.append(plain.data(), plain.size());
    return start_.size() < kStartSniffBytes ? absl::OkStatus() : CheckStart(out);
  }
  return FeedChecked(plain, out);
}

absl::Status BodyMasker::CheckStart(std::string* out) {
  start_checked_ = true;
  std::string held;
  held.swap(start_);
  // Text and JSON hold no NUL: one in the first bytes is UTF-16 or UTF-32 (or not text).
  if (HasWideBom(held) || absl::string_view(held).substr(0, kStartSniffBytes).find('\0') != absl::string_view::npos) {
    refused_encoding_ = true;
    return absl::FailedPreconditionError(kWideText);
  }
  MoveLeadingBom(&held, out);
  return held.empty() ? absl::OkStatus() : FeedChecked(held, out);
}

absl::Status BodyMasker::FeedChecked(absl::string_view plain, std::string* out) {
  if (sniff_ == Sniff::kBinary) {
    out->append(plain.data(), plain.size());
    return absl::OkStatus();
  }
  if (sniff_ == Sniff::kOctetHead) {
    trial_in_.append(plain.data(), plain.size());
    return trial_in_.size() < kOctetSniffBytes ? absl::OkStatus() : DecideOctetStream(out);
  }
  if (sniff_ == Sniff::kLeadingSpace || sniff_ == Sniff::kTrial) return FeedSniffing(plain, out);
  if (json_) return json_->Feed(plain, out);
  return FeedText(plain, out);
}

absl::Status BodyMasker::FeedSniffing(absl::string_view plain, std::string* out) {
  if (sniff_ == Sniff::kLeadingSpace) {
    const size_t first = plain.find_first_not_of(" \t\r\n");
    if (first == absl::string_view::npos && trial_in_.size() + plain.size() <= kJsonSniffBytes) {
      trial_in_.append(plain.data(), plain.size());
      return absl::OkStatus();
    }
    if (first == absl::string_view::npos || (plain[first] != '{' && plain[first] != '[')) {
      return BecomeText(plain, out);
    }
    // It starts like JSON: try it, the held whitespace first.
    sniff_ = Sniff::kTrial;
    json_.emplace(masker_);
    if (!trial_in_.empty() && !json_->Feed(trial_in_, &trial_out_).ok()) return BecomeText(plain, out);
  }
  trial_in_.append(plain.data(), plain.size());
  if (!json_->Feed(plain, &trial_out_).ok()) return BecomeText({}, out);  // not JSON: text
  if (trial_in_.size() > kJsonSniffBytes) {
    // JSON this far: it is JSON from here on.
    sniff_ = Sniff::kJson;
    out->append(trial_out_);
    std::string().swap(trial_in_);
    std::string().swap(trial_out_);
  }
  return absl::OkStatus();
}

namespace {

// No NUL, no control byte but TAB, LF, VT, FF, CR, ESC (and no DEL): text, in whatever
// 8-bit encoding.
bool LooksLikeText(absl::string_view head) {
  for (char ch : head) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' && c != 0x1b)) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status BodyMasker::DecideOctetStream(std::string* out) {
  std::string held;
  held.swap(trial_in_);
  const absl::string_view head = absl::string_view(held).substr(0, kOctetSniffBytes);
  if (options_.refuse_wide_text && (HasWideBom(head) || (!LooksLikeText(head) && LooksLikeWideText(head)))) {
    // Text all the same (an export in "Unicode text", as spreadsheets write it), but one the
    // detectors cannot read: not passed as binary.
    refused_encoding_ = true;
    return absl::FailedPreconditionError(kWideText);
  }
  if (!LooksLikeText(head)) {
    sniff_ = Sniff::kBinary;
    out->append(held);
    return absl::OkStatus();
  }
  sniff_ = Sniff::kLeadingSpace;
  MoveLeadingBom(&held, out);
  return FeedSniffing(held, out);
}

absl::Status BodyMasker::BecomeText(absl::string_view rest, std::string* out) {
  constexpr absl::string_view kSpace = " \t\r\n";
  if (options_.refuse_text && (absl::string_view(trial_in_).find_first_not_of(kSpace) != absl::string_view::npos ||
                       rest.find_first_not_of(kSpace) != absl::string_view::npos)) {
    refused_text_ = true;
    return absl::FailedPreconditionError(
        "body: text that is not one JSON document, which the mask profile's field rules cannot reach");
  }
  sniff_ = Sniff::kText;
  json_.reset();
  std::string().swap(trial_out_);
  std::string held;
  held.swap(trial_in_);
  INTERLOCK_RETURN_IF_ERROR(FeedText(held, out));
  return rest.empty() ? absl::OkStatus() : FeedText(rest, out);
}

absl::Status BodyMasker::FinishPlain(std::string* out) {
  if (!start_checked_ && kind_ != BodyKind::kOctetStream) INTERLOCK_RETURN_IF_ERROR(CheckStart(out));
  if (sniff_ == Sniff::kOctetHead) INTERLOCK_RETURN_IF_ERROR(DecideOctetStream(out));
  if (sniff_ == Sniff::kBinary) return absl::OkStatus();
  if (sniff_ == Sniff::kLeadingSpace) INTERLOCK_RETURN_IF_ERROR(BecomeText({}, out));
  if (sniff_ == Sniff::kTrial) {
    if (json_->Finish(&trial_out_).ok()) {  // one whole document: JSON
      sniff_ = Sniff::kJson;
      out->append(trial_out_);
      std::string().swap(trial_in_);
      std::string().swap(trial_out_);
      return absl::OkStatus();
    }
    INTERLOCK_RETURN_IF_ERROR(BecomeText({}, out));
  }
  if (json_) {
    // An empty document (gzip of nothing) is an empty body, not an invalid one.
    if (decoded_bytes_ == 0) return absl::OkStatus();
    return json_->Finish(out);
  }
  if (!line_.empty()) {
    INTERLOCK_RETURN_IF_ERROR(MaskLine(line_, out));
    line_.clear();
  }
  if (kind_ == BodyKind::kEventStream) EndEvent(out);  // the last event, without its blank line
  return absl::OkStatus();
}

absl::Status BodyMasker::FlushLine(std::string* out) {
  if (kind_ != BodyKind::kText || coding_ != ContentCoding::kIdentity) {
    return absl::FailedPreconditionError("body: only an uncoded text body flushes a partial line");
  }
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("body: already finished");
  if (!line_.empty()) {
    INTERLOCK_RETURN_IF_ERROR(MaskLine(line_, out));
    line_.clear();
  }
  return absl::OkStatus();
}

// Detectors see whole lines only: a match cannot cross a '\n' (none of the built-in
// detectors' matches can), and a line is the same whatever reads it arrived in, so the
// output does not depend on where the network cut the body.
absl::Status BodyMasker::FeedText(absl::string_view text, std::string* out) {
  if (text_passthrough_) {
    out->append(text.data(), text.size());
    return absl::OkStatus();
  }
  static constexpr absl::string_view kTooLong =
      "body: a text line longer than 1048576 bytes cannot be masked";
  static_assert(kMaxTextLineBytes == 1048576);
  static_assert(kMaxTextLineBytes == codec::json::kMaxTokenBytes);
  const size_t last = text.rfind('\n');
  if (last == absl::string_view::npos) {
    if (line_.size() + text.size() > kMaxTextLineBytes) {
      return absl::InvalidArgumentError(kTooLong);
    }
    line_.append(text.data(), text.size());
    return absl::OkStatus();
  }
  absl::string_view lines = text.substr(0, last + 1);
  const absl::string_view rest = text.substr(last + 1);
  if (!line_.empty()) {
    const size_t end = lines.find('\n');
    if (line_.size() + end > kMaxTextLineBytes) return absl::InvalidArgumentError(kTooLong);
    line_.append(lines.data(), end + 1);
    INTERLOCK_RETURN_IF_ERROR(MaskLine(line_, out));
    line_.clear();
    lines.remove_prefix(end + 1);
  }
  while (!lines.empty()) {
    const size_t end = lines.find('\n');
    if (end > kMaxTextLineBytes) return absl::InvalidArgumentError(kTooLong);
    INTERLOCK_RETURN_IF_ERROR(MaskLine(lines.substr(0, end + 1), out));
    lines.remove_prefix(end + 1);
  }
  if (rest.size() > kMaxTextLineBytes) return absl::InvalidArgumentError(kTooLong);
  line_.assign(rest.data(), rest.size());
  return absl::OkStatus();
}

// The line keeps its terminator ("\n" or "\r\n"): MaskText changes matched spans only.
absl::Status BodyMasker::MaskLine(absl::string_view line, std::string* out) {
  if (kind_ == BodyKind::kJsonLines) return MaskJsonLine(line, out);
  // Text holds no NUL: a line with one is wide text (or not text) the detectors cannot read.
  if (options_.refuse_wide_text && line.find('\0') != absl::string_view::npos) {
    refused_encoding_ = true;
    return absl::FailedPreconditionError(kWideText);
  }
  if (kind_ == BodyKind::kEventStream) return MaskEventLine(line, out);
  if (masker_.MaskText(line, &masked_, &counts_)) {
    out->append(masked_);
  } else {
    out->append(line.data(), line.size());
  }
  return absl::OkStatus();
}

namespace {

// A line without its end ("\n", "\r\n", or none).
absl::string_view LineContent(absl::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// An SSE data line's value: after "data:" and one optional space (the field's prefix
// length in *prefix); nullopt for any other line.
std::optional<absl::string_view> DataValue(absl::string_view content, size_t* prefix) {
  if (!absl::StartsWith(content, "data:")) return std::nullopt;
  *prefix = content.size() > 5 && content[5] == ' ' ? 6 : 5;
  return content.substr(*prefix);
}

}  // namespace

absl::Status BodyMasker::MaskEventLine(absl::string_view line, std::string* out) {
  if (LineContent(line).empty()) {  // the event ends
    EndEvent(out);
    out->append(line.data(), line.size());
    return absl::OkStatus();
  }
  if (event_bytes_ + line.size() > kMaxTextLineBytes) {
    return absl::InvalidArgumentError("body: a server-sent event longer than 1048576 bytes cannot be masked");
  }
  event_bytes_ += line.size();
  event_lines_.emplace_back(line);
  return absl::OkStatus();
}

void BodyMasker::EndEvent(std::string* out) {
  // The data, joined as the spec joins it (RFC: one LF between data lines).
  std::string data;
  size_t data_lines = 0;
  for (const std::string& l : event_lines_) {
    size_t prefix = 0;
    if (std::optional<absl::string_view> v = DataValue(LineContent(l), &prefix)) {
      if (data_lines++ > 0) data.push_back('\n');
      data.append(v->data(), v->size());
    }
  }
  // JSON data: masked as JSON. The masker keeps every byte it does not replace, and a
  // replacement is a JSON string (no raw newline), so the masked text splits back into
  // as many lines as there were data lines.
  std::vector<std::string> masked_data;
  const size_t first = data.find_first_not_of(" \t\n");
  if (first != std::string::npos && (data[first] == '{' || data[first] == '[')) {
    JsonMasker json(masker_);
    std::string masked;
    if (json.Feed(data, &masked).ok() && json.Finish(&masked).ok()) {
      masked_data = absl::StrSplit(masked, '\n');
      if (masked_data.size() == data_lines) {
        counts_.Merge(json.counts());
      } else {
        masked_data.clear();  // cannot happen (see above); then as text
      }
    }
  }
  size_t k = 0;
  for (const std::string& l : event_lines_) {
    size_t prefix = 0;
    const absl::string_view content = LineContent(l);
    if (!masked_data.empty() && DataValue(content, &prefix).has_value()) {
      out->append(l.data(), prefix);
      out->append(masked_data[k++]);
      out->append(l.data() + content.size(), l.size() - content.size());
    } else if (masker_.MaskText(l, &masked_, &counts_)) {
      out->append(masked_);
    } else {
      out->append(l);
    }
  }
  event_lines_.clear();
  event_bytes_ = 0;
}

// One JSON document; the line's end ("\n", "\r\n", or none) and a json-seq record
// separator (RFC 7464: 0x1E before each record) stay as they are, as does a blank line.
absl::Status BodyMasker::MaskJsonLine(absl::string_view line, std::string* out) {
  const size_t begin = !line.empty() && line[0] == '\x1e' ? 1 : 0;
  const size_t end = std::max(begin, LineContent(line).size());
  out->append(line.data(), begin);
  const absl::string_view doc = line.substr(begin, end - begin);
  if (doc.find_first_not_of(" \t") == absl::string_view::npos) {
    out->append(doc.data(), doc.size());
  } else {
    JsonMasker json(masker_);
    INTERLOCK_RETURN_IF_ERROR(json.Feed(doc, out));
    INTERLOCK_RETURN_IF_ERROR(json.Finish(out));
    counts_.Merge(json.counts());
  }
  out->append(line.data() + end, line.size() - end);
  return absl::OkStatus();
}

absl::Status BodyMasker::FeedCoded(absl::string_view chunk, std::string* out) {
  Inflater& inf = *inflater_;
  const absl::string_view name = ContentCodingName(coding_);
  if (!inf.live) {
    // The wrapper: gzip is gzip; "deflate" is zlib or raw, told by the first two bytes.
    unsigned char head[2];
    size_t head_fed = 0;  // how many of head[] came from earlier Feeds
    if (coding_ == ContentCoding::kGzip) {
      inf.wrapper = Wrapper::kGzip;
    } else {
      if (inf.head_len + chunk.size() < 2) {
        inf.head[inf.head_len++] = static_cast<unsigned char>(chunk[0]);
        return absl::OkStatus();
      }
      head_fed = inf.head_len;
      std::memcpy(head, inf.head, head_fed);
      std::memcpy(head + head_fed, chunk.data(), 2 - head_fed);
      inf.wrapper = LooksLikeZlibHeader(head[0], head[1]) ? Wrapper::kZlib : Wrapper::kRaw;
    }
    int rc = inflateInit2(&inf.s, WindowBits(inf.wrapper));
    if (rc != Z_OK) return ZlibError(name, inf.s, rc);
    inf.live = true;
    deflater_ = std::make_unique<Deflater>();
    rc = deflateInit2(&deflater_->s, kDeflateLevel, Z_DEFLATED, WindowBits(inf.wrapper), kMemLevel,
                      Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) return ZlibError(name, deflater_->s, rc);
    deflater_->live = true;
    scratch_.resize(kInflateChunkBytes);
    if (head_fed > 0) {
      // The byte held back from an earlier Feed goes in first.
      inf.s.next_in = inf.head;
      inf.s.avail_in = static_cast<uInt>(head_fed);
      INTERLOCK_RETURN_IF_ERROR(Inflate(out));
    }
  }
  // uInt is 32 bits: feed a huge chunk in slices.
  while (!chunk.empty()) {
    const size_t n = std::min<size_t>(chunk.size(), 1u << 30);
    inf.s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
    inf.s.avail_in = static_cast<uInt>(n);
    INTERLOCK_RETURN_IF_ERROR(Inflate(out));
    chunk.remove_prefix(n);
  }
  if (unflushed_) {
    INTERLOCK_RETURN_IF_ERROR(Compress(Z_SYNC_FLUSH, out));
    unflushed_ = false;
  }
  return absl::OkStatus();
}

// Inflates all of the Inflater's pending input, kInflateChunkBytes of output at a time,
// masking and re-deflating each piece before the next: memory stays bounded whatever the
// compression ratio.
absl::Status BodyMasker::Inflate(std::string* out) {
  Inflater& inf = *inflater_;
  const absl::string_view name = ContentCodingName(coding_);
  while (true) {
    if (inf.ended) {
      if (inf.s.avail_in == 0) return absl::OkStatus();
      if (inf.wrapper != Wrapper::kGzip) {
        return absl::InvalidArgumentError(
            absl::StrCat("body: ", name, ": data after the end of the compressed stream"));
      }
      // RFC 1952 section 2.2: a gzip file is a series of members. Whatever follows a member
      // must be another one (inflate rejects garbage as "incorrect header check").
      const int rc = inflateReset(&inf.s);
      if (rc != Z_OK) return ZlibError(name, inf.s, rc);
      inf.ended = false;
    }
    inf.s.next_out = reinterpret_cast<Bytef*>(scratch_.data());
    inf.s.avail_out = static_cast<uInt>(scratch_.size());
    const int rc = inflate(&inf.s, Z_NO_FLUSH);
    const size_t produced = scratch_.size() - inf.s.avail_out;
    if (produced > 0) {
      INTERLOCK_RETURN_IF_ERROR(FeedPlain(absl::string_view(scratch_.data(), produced), &plain_));
      if (!plain_.empty()) {
        INTERLOCK_RETURN_IF_ERROR(Compress(Z_NO_FLUSH, out));
        unflushed_ = true;
      }
    }
    switch (rc) {
      case Z_STREAM_END:
        inf.ended = true;
        inf.member_done = true;
        break;
      case Z_OK:
        if (inf.s.avail_in == 0 && inf.s.avail_out != 0) return absl::OkStatus();
        break;
      case Z_BUF_ERROR:
        // No progress possible: all input consumed, the rest of the stream is to come.
        if (inf.s.avail_in == 0) return absl::OkStatus();
        return ZlibError(name, inf.s, rc);
      case Z_NEED_DICT:  // RFC 1950 FDICT: a preset dictionary, never agreed in HTTP
        return absl::InvalidArgumentError(
            absl::StrCat("body: ", name, ": a preset dictionary is not supported"));
      default:  // Z_DATA_ERROR, Z_MEM_ERROR
        return ZlibError(name, inf.s, rc);
    }
  }
}

absl::Status BodyMasker::FinishCoded(std::string* out) {
  Inflater& inf = *inflater_;
  if (inf.live && !inf.ended && inf.member_done) {
    return absl::InvalidArgumentError(
        "body: gzip: the bytes after the last member are not a whole gzip member");
  }
  if (!inf.live || !inf.ended) {
    return absl::InvalidArgumentError(absl::StrCat(
        "body: ", ContentCodingName(coding_), ": truncated (the compressed stream does not end)"));
  }
  INTERLOCK_RETURN_IF_ERROR(FinishPlain(&plain_));
  return Compress(Z_FINISH, out);
}

absl::Status BodyMasker::Compress(int flush, std::string* out) {
  z_stream& s = deflater_->s;
  s.next_in = reinterpret_cast<Bytef*>(plain_.data());
  s.avail_in = static_cast<uInt>(plain_.size());
  // Deflate straight into *out: grow it by a bound, trim to what was written.
  size_t room = deflateBound(&s, s.avail_in) + 64;
  do {
    const size_t old = out->size();
    ReserveFor(out, room);
    out->resize(old + room);
    s.next_out = reinterpret_cast<Bytef*>(out->data() + old);
    s.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&s, flush);
    out->resize(old + room - s.avail_out);
    if (rc == Z_STREAM_ERROR) return ZlibError(ContentCodingName(coding_), s, rc);
    room = 16 * 1024;
  } while (s.avail_out == 0);
  plain_.clear();
  return absl::OkStatus();
}

}  // namespace interlock::mask
