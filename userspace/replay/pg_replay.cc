#include "userspace/replay/pg_replay.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/common/printable.h"
#include "userspace/codec/pg/messages.h"

namespace interlock::replay {
namespace {

namespace cpg = ::interlock::codec::pg;

// Continuation lines start under the message text: time (14) + 2 + side (6) + 2, and 2 more.
constexpr int kIndent = 26;

enum Side { kAgent = 0, kServer = 1 };

using common::Printable;
using common::Printed;

std::string Text(absl::string_view s) { return Printable(s, 0).text; }

// "(unnamed)" or "s1" (quoted): statement and portal names.
std::string Name(absl::string_view name) {
  return name.empty() ? "(unnamed)" : absl::StrCat("\"", Text(name), "\"");
}

struct Cell {
  std::string text;
  size_t width = 0;
};

// A parameter, column or function value: NULL; \x hex for binary format; the (escaped) text
// otherwise, quoted when `quote`. Cut at `max_chars`, saying how long the value was.
Cell Value(std::optional<absl::string_view> v, bool binary, size_t max_chars, bool quote) {
  if (!v.has_value()) return {"NULL", 4};
  Cell cell;
  bool cut = false;
  if (binary) {
    const size_t room = max_chars > 2 ? (max_chars - 2) / 2 : 1;
    const size_t n = max_chars == 0 ? v->size() : std::min(v->size(), room);
    cell.text = "\\x";
    for (size_t i = 0; i < n; ++i) {
      absl::StrAppendFormat(&cell.text, "%02x", static_cast<unsigned char>((*v)[i]));
    }
    cell.width = cell.text.size();
    cut = n < v->size();
  } else {
    Printed p = Printable(*v, max_chars);
    cell.text = quote ? absl::StrCat("'", p.text, "'") : std::move(p.text);
    cell.width = p.chars + (quote ? 2 : 0);
    cut = p.cut;
  }
  if (cut) {
    const std::string more = absl::StrFormat("... (%d bytes)", v->size());
    cell.text.append(more);
    cell.width += more.size();
  }
  return cell;
}

// The format code of value `i` under PostgreSQL's rule for Bind/FunctionCall format lists:
// none = all text, one = applies to all, otherwise one per value.
bool IsBinary(const std::vector<int16_t>& formats, size_t i) {
  if (formats.empty()) return false;
  if (formats.size() == 1) return formats[0] == 1;
  return i < formats.size() && formats[i] == 1;
}

// Names of the built-in types a statement most often uses (pg_type.dat); "oid N" otherwise.
std::string TypeLabel(uint32_t oid) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {0, "unspecified"}, {16, "bool"},      {17, "bytea"},       {18, "char"},
      {19, "name"},       {20, "int8"},      {21, "int2"},        {23, "int4"},
      {25, "text"},       {26, "oid"},       {114, "json"},       {142, "xml"},
      {700, "float4"},    {701, "float8"},   {1042, "bpchar"},    {1043, "varchar"},
      {1082, "date"},     {1083, "time"},    {1114, "timestamp"}, {1184, "timestamptz"},
      {1186, "interval"}, {1700, "numeric"}, {2950, "uuid"},      {3802, "jsonb"},
  };
  for (const auto& [o, name] : kNames) {
    if (o == oid) return name;
  }
  return absl::StrCat("oid ", oid);
}

std::string Plural(uint64_t n, absl::string_view word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

// ---------------------------------------------------------------------------------------------
// The timeline.

// One direction's byte stream.
struct Stream {
  std::string buf;          // bytes not decoded yet
  uint64_t offset = 0;      // stream offset of buf[0]
  bool startup = false;     // agent: untyped startup-phase packets come next
  bool lost = false;        // lost sync: later records are shown raw
  uint64_t copy_bytes = 0;  // consecutive CopyData messages, summarized in one line
  uint64_t copy_messages = 0;
  int64_t copy_time = 0;
};

// A result set being collected: RowDescription, then DataRows.
struct ResultSet {
  bool open = false;
  bool described = false;  // a RowDescription started it (not a DataRow alone)
  std::vector<cpg::FieldDescription> fields;
  std::vector<std::vector<Cell>> rows;  // the first max_rows
  uint64_t row_count = 0;
  // Sealed originals that arrived while it was open: opened DataRows (the first max_rows of
  // them), or, without the auditor key, what was sealed.
  std::vector<std::vector<Cell>> original_rows;
  uint64_t original_count = 0;
  uint64_t sealed_records = 0;
  uint64_t sealed_bytes = 0;
};

// One direction's opened sealed originals (record.proto SealedData): whole messages as the
// resource sent them, decoded apart from the recorded stream.
struct OriginalStream {
  std::string buf;      // bytes not decoded yet
  uint64_t offset = 0;  // offset of buf[0] among this direction's originals
  bool lost = false;    // could not be framed: later ones are shown raw
};

class PgTimeline {
 public:
  PgTimeline(const PgTimelineOptions& options, int64_t start) : options_(options), start_(start) {
    streams_[kAgent].startup = true;
  }

  void OnRecord(const v1::Record& r) {
    if (r.has_sealed()) {
      OnSealed(r);
      return;
    }
    if (r.has_data() && (r.data().direction() == v1::DIRECTION_TO_UPSTREAM ||
                         r.data().direction() == v1::DIRECTION_TO_AGENT)) {
      const Side side = r.data().direction() == v1::DIRECTION_TO_UPSTREAM ? kAgent : kServer;
      Stream& s = streams_[side];
      if (!s.lost) {
        s.buf.append(r.data().payload());
        Decode(side, r.time_unix_nanos());
        return;
      }
    } else if (r.has_event()) {
      // The agent's TLS handshake answered its SSLRequest (the 'S' is not recorded).
      if (r.event().kind() == "agent_tls") ssl_answer_due_ = 0;
      if (r.event().kind() == "literals_withheld") literals_withheld_ = true;
      FlushSummaries(r.time_unix_nanos());
    } else if (r.has_close() || r.has_seal()) {
      Finish(r.time_unix_nanos());
    }
    out_.append(record::FormatTimelineRecord(r, start_, options_.raw));
  }

  // Reports what is left over: partial messages, a result set or COPY still open.
  void Finish(int64_t time) {
    for (Side side : {kAgent, kServer}) {
      Stream& s = streams_[side];
      if (s.lost || s.buf.empty()) continue;
      const absl::string_view rest = s.buf;
      std::string what;
      if (side == kAgent && s.startup) {
        what = "startup packet";
      } else if (rest.size() < cpg::kMessageHeaderBytes) {
        what = "message header";
      } else {
        auto h = cpg::PeekHeader(rest, cpg::kMaxMessageBytes);
        what = h.ok() && h->has_value()
                   ? absl::StrFormat("%s of %d bytes", cpg::MessageName((*h)->type, side == kAgent),
                                     (*h)->total_bytes)
                   : "message";
      }
      FlushSummaries(time);
      Line(time, side,
           absl::StrFormat("incomplete %s at offset %d: %s recorded: \"%s\"", what, s.offset,
                           Plural(rest.size(), "byte"),
                           record::EscapedPreview(rest, options_.raw.preview_chars)));
      s.offset += s.buf.size();
      s.buf.clear();
    }
    FlushSummaries(time);
  }

  std::string Take() { return std::move(out_); }

 private:
  void Line(int64_t time, Side side, absl::string_view text) {
    absl::StrAppendFormat(&out_, "%14s  %-6s  %s\n", record::FormatRelativeTime(time - start_),
                          side == kAgent ? "agent" : "server", text);
  }
  void More(absl::string_view text) { absl::StrAppendFormat(&out_, "%*s%s\n", kIndent, "", text); }

  // Multi-line text (SQL, error messages): the first line after `prefix` on a Line, the others
  // indented below it. Trailing blank lines are dropped.
  void TextLines(int64_t time, Side side, absl::string_view prefix, absl::string_view text) {
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::StripTrailingAsciiWhitespace(text), '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      absl::string_view l = lines[i];
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      const std::string shown = Printable(l, 0, /*keep_tabs=*/true).text;
      if (i == 0) {
        Line(time, side, absl::StrCat(prefix, shown));
      } else {
        More(shown);
      }
    }
  }
  // A labelled, possibly multi-line value on continuation lines ("detail: ...").
  void MoreLines(absl::string_view label, absl::string_view text) {
    std::vector<absl::string_view> lines =
        absl::StrSplit(absl::StripTrailingAsciiWhitespace(text), '\n');
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string shown = Printable(lines[i], 0, /*keep_tabs=*/true).text;
      More(i == 0 ? absl::StrCat(label, ": ", shown)
                  : absl::StrCat(std::string(label.size() + 2, ' '), shown));
    }
  }

  void Decode(Side side, int64_t time) {
    Stream& s = streams_[side];
    size_t pos = 0;
    while (!s.lost && pos < s.buf.size()) {
      const absl::string_view rest = absl::string_view(s.buf).substr(pos);
      const uint64_t offset = s.offset + pos;
      size_t used = 0;
      if (side == kAgent && s.startup) {
        used = DecodeStartup(rest, offset, time);
      } else if (side == kServer && ssl_answer_due_ != 0 &&
                 (rest[0] == 'N' || rest[0] == 'S' || rest[0] == 'G')) {
        used = 1;
        SslAnswer(rest[0], time);
      } else {
        used = DecodeTyped(side, rest, offset, time);
      }
      if (used == 0) break;
      pos += used;
    }
    if (s.lost) {
      s.offset += s.buf.size();
      s.buf.clear();
      return;
    }
    s.buf.erase(0, pos);
    s.offset += pos;
  }

  // The direction can no longer be framed: report the bytes left and show the rest raw.
  void LoseSync(Side side, absl::string_view rest, uint64_t offset, int64_t time,
                absl::string_view why) {
    FlushSummaries(time);
    Line(time, side,
         absl::StrFormat("undecodable bytes (%d) at offset %d: \"%s\"", rest.size(), offset,
                         record::EscapedPreview(rest, options_.raw.preview_chars)));
    More(absl::StrCat("(", why, "; the rest of this direction is shown raw)"));
    streams_[side].lost = true;
  }

  // A message framed correctly whose body does not parse: the stream is still in sync.
  void BadMessage(Side side, absl::string_view what, absl::string_view raw, uint64_t offset,
                  int64_t time, const absl::Status& status) {
    Line(time, side,
         absl::StrFormat("undecodable %s (%d bytes) at offset %d: %s", what, raw.size(), offset,
                         status.message()));
    More(absl::StrCat("\"", record::EscapedPreview(raw, options_.raw.preview_chars), "\""));
  }

  void MaybeHexdump(absl::string_view raw) {
    if (options_.raw.hexdump) out_.append(record::Hexdump(raw, options_.raw.hexdump_max_bytes));
  }

  size_t DecodeStartup(absl::string_view rest, uint64_t offset, int64_t time) {
    auto frame = cpg::PeekStartupFrame(rest);
    if (!frame.ok()) {
      LoseSync(kAgent, rest, offset, time, frame.status().message());
      return 0;
    }
    if (!frame->has_value()) return 0;
    const cpg::Frame& f = **frame;
    const absl::string_view raw = rest.substr(0, f.total_bytes);
    FlushSummaries(time);
    ssl_answer_due_ = 0;
    auto packet = cpg::ParseStartupPacket(f.body);
    if (!packet.ok()) {
      BadMessage(kAgent, "startup packet", raw, offset, time, packet.status());
      return f.total_bytes;
    }
    if (const auto* m = std::get_if<cpg::StartupMessage>(&*packet)) {
      Startup(*m, time);
      streams_[kAgent].startup = false;
    } else if (std::holds_alternative<cpg::SslRequest>(*packet)) {
      Line(time, kAgent, "SSLRequest");
      ssl_answer_due_ = 'S';
    } else if (std::holds_alternative<cpg::GssEncRequest>(*packet)) {
      Line(time, kAgent, "GSSENCRequest");
      ssl_answer_due_ = 'G';
    } else if (const auto* c = std::get_if<cpg::CancelRequest>(&*packet)) {
      Line(time, kAgent, absl::StrFormat("CancelRequest: backend pid %d", c->process_id));
    }
    MaybeHexdump(raw);
    return f.total_bytes;
  }

  void Startup(const cpg::StartupMessage& m, int64_t time) {
    Line(time, kAgent,
         absl::StrFormat("StartupMessage protocol %d.%d%s", m.major_version, m.minor_version,
                         m.major_version == cpg::kProtocolMajor ? "" : " (unsupported)"));
    for (const auto& [name, value] : m.params) {
      std::string note;
      if (name == "user") note = "  (ignored: interlockd logs in as the configured role)";
      if (name == "database") note = "  (ignored: interlockd uses the configured database)";
      More(absl::StrCat(Text(name), " = \"", Text(value), "\"", note));
    }
  }

  // A sealed original. Opened (options_.raw.originals), its DataRows become "original rows"
  // printed under the masked result they belong to, or on their own when no result is being
  // collected; its other messages get one line each. Not opened, it is counted in the open
  // result set, or gets FormatTimeline's "[sealed original: N bytes]" line.
  void OnSealed(const v1::Record& r) {
    const v1::SealedData& d = r.sealed();
    const int64_t time = r.time_unix_nanos();
    const bool known = d.direction() == v1::DIRECTION_TO_UPSTREAM ||
                       d.direction() == v1::DIRECTION_TO_AGENT;
    const Side side = d.direction() == v1::DIRECTION_TO_UPSTREAM ? kAgent : kServer;
    const std::string* plain = nullptr;
    if (const record::UnsealedOriginals* o = options_.raw.originals; o != nullptr) {
      if (auto it = o->find(r.seq()); it != o->end()) plain = &it->second;
    }
    if (plain == nullptr || !known || originals_[side].lost) {
      if (plain == nullptr && known && side == kServer && result_.open) {
        ++result_.sealed_records;
        result_.sealed_bytes += d.ciphertext().size() > record::kSealTagBytes
                                    ? d.ciphertext().size() - record::kSealTagBytes
                                    : 0;
        return;
      }
      out_.append(record::FormatTimelineRecord(r, start_, options_.raw));
      return;
    }

    // Rows with no result set open (it ended before its originals were recorded) are printed
    // at once, under the columns of the last RowDescription.
    ResultSet loose;
    const bool attach = result_.open && side == kServer;
    ResultSet& target = attach ? result_ : loose;
    if (!attach) loose.fields = last_fields_;

    OriginalStream& o = originals_[side];
    o.buf.append(*plain);
    size_t pos = 0;
    while (pos < o.buf.size()) {
      const absl::string_view rest = absl::string_view(o.buf).substr(pos);
      std::string why;
      if (cpg::MessageName(rest[0], side == kAgent) == "Unknown") {
        why = absl::StrFormat("unknown message type 0x%02x", static_cast<unsigned char>(rest[0]));
      }
      auto frame = why.empty() ? cpg::PeekFrame(rest, cpg::kMaxMessageBytes)
                               : absl::StatusOr<std::optional<cpg::Frame>>(std::nullopt);
      if (!frame.ok()) why = std::string(frame.status().message());
      if (!why.empty()) {
        if (!attach) PrintOriginals(time, loose);
        Line(time, side,
             absl::StrFormat("original: undecodable bytes (%d) at offset %d: \"%s\"", rest.size(),
                             o.offset + pos,
                             record::EscapedPreview(rest, options_.raw.preview_chars)));
        More(absl::StrCat("(", why, "; the later originals of this direction are shown raw)"));
        o.lost = true;
        o.offset += o.buf.size();
        o.buf.clear();
        return;
      }
      if (!frame->has_value()) break;
      const cpg::Frame& f = **frame;
      OriginalMessage(side, f.type, f.body, rest.substr(0, f.total_bytes), o.offset + pos, time,
                      target, attach);
      pos += f.total_bytes;
    }
    o.buf.erase(0, pos);
    o.offset += pos;
    if (!attach) PrintOriginals(time, loose);
  }

  void OriginalMessage(Side side, char type, absl::string_view body, absl::string_view raw,
                       uint64_t offset, int64_t time, ResultSet& target, bool attached) {
    if (side == kServer && type == cpg::backend::kDataRow) {
      auto row = cpg::ParseDataRow(body);
      if (row.ok()) {
        // A loose row under a description of another shape gets no column names.
        if (!attached && target.original_count == 0 &&
            target.fields.size() != row->columns.size()) {
          target.fields.clear();
        }
        ++target.original_count;
        if (target.original_rows.size() >= options_.max_rows) return;
        std::vector<Cell> cells;
        for (size_t i = 0; i < row->columns.size(); ++i) {
          const bool binary = i < target.fields.size() && target.fields[i].format == 1;
          cells.push_back(Value(row->columns[i], binary, options_.max_value_chars, false));
        }
        target.original_rows.push_back(std::move(cells));
        return;
      }
      BadMessage(side, "original DataRow message", raw, offset, time, row.status());
      return;
    }
    FlushCopy(side);  // the masked COPY data this original belongs to comes first
    if (side == kAgent && OriginalStatement(type, body, time)) {
      MaybeHexdump(raw);
      return;
    }
    Line(time, side,
         absl::StrFormat("original %s (%d bytes): \"%s\"", cpg::MessageName(type, side == kAgent),
                         raw.size(), record::EscapedPreview(body, options_.raw.preview_chars)));
    MaybeHexdump(raw);
  }

  // An opened original of a frontend message whose literals the recording withheld
  // (literal_withholding.h): the statement or the values in full. False for other messages.
  bool OriginalStatement(char type, absl::string_view body, int64_t time) {
    namespace fe = cpg::frontend;
    const bool withheld = literals_withheld_;
    literals_withheld_ = false;  // these are the values themselves
    bool shown = true;
    if (auto q = type == fe::kQuery ? cpg::ParseQuery(body) : absl::StatusOr<cpg::Query>(absl::NotFoundError(""));
        q.ok()) {
      TextLines(time, kAgent, "original Query: ", q->query);
    } else if (auto p = type == fe::kParse ? cpg::ParseParse(body) : absl::StatusOr<cpg::Parse>(absl::NotFoundError(""));
               p.ok()) {
      TextLines(time, kAgent, absl::StrCat("original Parse ", Name(p->statement), ": "), p->query);
    } else if (auto b = type == fe::kBind ? cpg::ParseBind(body) : absl::StatusOr<cpg::Bind>(absl::NotFoundError(""));
               b.ok()) {
      Line(time, kAgent, absl::StrCat("original Bind: portal ", Name(b->portal), ", statement ", Name(b->statement)));
      Values(b->params, b->param_formats);
    } else if (auto f = type == fe::kFunctionCall ? cpg::ParseFunctionCall(body)
                                                  : absl::StatusOr<cpg::FunctionCall>(absl::NotFoundError(""));
               f.ok()) {
      Line(time, kAgent, absl::StrCat("original FunctionCall: function oid ", f->function_oid));
      Values(f->args, f->arg_formats);
    } else {
      shown = false;
    }
    literals_withheld_ = withheld;
    return shown;
  }

  // The opened original rows and the sealed-but-unopened count of a result set.
  void PrintOriginals(int64_t time, const ResultSet& r) {
    if (r.original_count > 0) {
      Line(time, kServer,
           absl::StrCat("original rows (sealed, before masking): ",
                        Plural(r.original_count, "row")));
      Table(r.fields, r.original_rows, r.original_count);
    }
    if (r.sealed_records > 0) {
      Line(time, kServer,
           absl::StrFormat("[sealed originals: %s in %s]", Plural(r.sealed_bytes, "byte"),
                           Plural(r.sealed_records, "record")));
    }
  }

  void SslAnswer(char answer, int64_t time) {
    const char* request = ssl_answer_due_ == 'G' ? "GSSENCRequest" : "SSLRequest";
    ssl_answer_due_ = 0;
    Line(time, kServer,
         absl::StrFormat("%s answer: %c (%s)", request, answer,
                         answer == 'N' ? "declined: the session continues unencrypted"
                                       : "accepted: the recording holds the decrypted bytes"));
  }

  size_t DecodeTyped(Side side, absl::string_view rest, uint64_t offset, int64_t time) {
    const bool frontend = side == kAgent;
    if (cpg::MessageName(rest[0], frontend) == "Unknown") {
      LoseSync(side, rest, offset, time,
               absl::StrFormat("unknown %s message type 0x%02x", frontend ? "frontend" : "backend",
                               static_cast<unsigned char>(rest[0])));
      return 0;
    }
    auto frame = cpg::PeekFrame(rest, cpg::kMaxMessageBytes);
    if (!frame.ok()) {
      LoseSync(side, rest, offset, time, frame.status().message());
      return 0;
    }
    if (!frame->has_value()) return 0;
    const cpg::Frame& f = **frame;
    const absl::string_view raw = rest.substr(0, f.total_bytes);
    if (frontend) {
      Frontend(f.type, f.body, raw, offset, time);
    } else {
      Backend(f.type, f.body, raw, offset, time);
    }
    return f.total_bytes;
  }

  // Writes the line of a parsed message, or reports it undecodable. `show` gets the value.
  template <typename T, typename Show>
  void Decoded(Side side, char type, absl::string_view raw, uint64_t offset, int64_t time,
               const absl::StatusOr<T>& parsed, Show show) {
    if (!parsed.ok()) {
      BadMessage(side, absl::StrCat(cpg::MessageName(type, side == kAgent), " message"), raw,
                 offset, time, parsed.status());
      return;
    }
    show(*parsed);
  }

  void Values(const std::vector<std::optional<absl::string_view>>& values,
              const std::vector<int16_t>& formats) {
    for (size_t i = 0; i < values.size(); ++i) {
      if (literals_withheld_ && values[i].has_value() && values[i]->empty()) {
        // The recording withheld it (literal_withholding.h); the original is sealed.
        More(absl::StrFormat("$%d = (withheld)", i + 1));
        continue;
      }
      More(absl::StrFormat("$%d = %s", i + 1,
                           Value(values[i], IsBinary(formats, i), options_.max_value_chars,
                                 /*quote=*/true)
                               .text));
    }
  }

  void Frontend(char type, absl::string_view body, absl::string_view raw, uint64_t offset,
                int64_t time) {
    namespace fe = cpg::frontend;
    ssl_answer_due_ = 0;
    Stream& s = streams_[kAgent];
    if (type == fe::kCopyData) {
      s.copy_bytes += body.size();
      ++s.copy_messages;
      s.copy_time = time;
      return;
    }
    FlushCopy(kAgent);
    auto line = [&](absl::string_view text) { Line(time, kAgent, text); };
    switch (type) {
      case fe::kQuery:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseQuery(body), [&](const cpg::Query& q) {
          if (q.query.empty()) return line("Query: (empty)");
          TextLines(time, kAgent, "Query: ", q.query);
        });
        break;
      case fe::kParse:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseParse(body), [&](const cpg::Parse& p) {
          TextLines(time, kAgent, absl::StrCat("Parse ", Name(p.statement), ": "), p.query);
          if (p.param_type_oids.empty()) return;
          std::vector<std::string> types;
          for (size_t i = 0; i < p.param_type_oids.size(); ++i) {
            types.push_back(absl::StrFormat("$%d %s", i + 1, TypeLabel(p.param_type_oids[i])));
          }
          More(absl::StrCat("parameter types: ", absl::StrJoin(types, ", ")));
        });
        break;
      case fe::kBind:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseBind(body), [&](const cpg::Bind& b) {
          line(absl::StrFormat("Bind: portal %s, statement %s, %s", Name(b.portal),
                               Name(b.statement), Plural(b.params.size(), "parameter")));
          Values(b.params, b.param_formats);
          bool any_binary = false;
          for (int16_t f : b.result_formats) any_binary |= f != 0;
          if (any_binary) {
            More(absl::StrCat("result formats: ",
                              absl::StrJoin(b.result_formats, ", ", [](std::string* o, int16_t f) {
                                o->append(f == 1 ? "binary" : f == 0 ? "text" : "?");
                              })));
          }
        });
        break;
      case fe::kExecute:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseExecute(body),
                [&](const cpg::Execute& e) {
                  line(absl::StrCat(
                      "Execute: portal ", Name(e.portal),
                      e.max_rows > 0 ? absl::StrCat(", at most ", e.max_rows, " rows") : ""));
                });
        break;
      case fe::kDescribe:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseDescribe(body),
                [&](const cpg::Describe& d) {
                  line(absl::StrCat(
                      "Describe: ", d.kind == cpg::TargetKind::kPortal ? "portal " : "statement ",
                      Name(d.name)));
                });
        break;
      case fe::kClose:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseClose(body), [&](const cpg::Close& c) {
          line(
              absl::StrCat("Close: ", c.kind == cpg::TargetKind::kPortal ? "portal " : "statement ",
                           Name(c.name)));
        });
        break;
      case fe::kCopyFail:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseCopyFail(body),
                [&](const cpg::CopyFail& f) { TextLines(time, kAgent, "CopyFail: ", f.message); });
        break;
      case fe::kFunctionCall:
        Decoded(kAgent, type, raw, offset, time, cpg::ParseFunctionCall(body),
                [&](const cpg::FunctionCall& f) {
                  line(absl::StrFormat("FunctionCall: function oid %d, %s%s", f.function_oid,
                                       Plural(f.args.size(), "argument"),
                                       f.result_format == 1 ? ", binary result" : ""));
                  Values(f.args, f.arg_formats);
                });
        break;
      case fe::kPasswordMessage:
        // Whatever its form (password, SASL, GSS), it is a credential: never shown.
        line(absl::StrFormat("PasswordMessage (%d bytes, not shown)", body.size()));
        return;
      default:  // Sync, Flush, Terminate, CopyDone: no contents.
        line(cpg::MessageName(type, true));
        if (!body.empty()) More(absl::StrFormat("(%d unexpected body bytes)", body.size()));
        break;
    }
    MaybeHexdump(raw);
  }

  void Backend(char type, absl::string_view body, absl::string_view raw, uint64_t offset,
               int64_t time) {
    namespace be = cpg::backend;
    Stream& s = streams_[kServer];
    if (type == be::kDataRow) {
      auto row = cpg::ParseDataRow(body);
      if (!row.ok()) {
        FlushResult(time, false);
        BadMessage(kServer, "DataRow message", raw, offset, time, row.status());
        return;
      }
      AddRow(*row);
      return;
    }
    if (type == be::kCopyData) {
      FlushResult(time, false);
      s.copy_bytes += body.size();
      ++s.copy_messages;
      s.copy_time = time;
      return;
    }
    FlushCopy(kServer);
    if (type == be::kRowDescription) {
      FlushResult(time, false);
      auto d = cpg::ParseRowDescription(body);
      if (!d.ok()) {
        BadMessage(kServer, "RowDescription message", raw, offset, time, d.status());
        return;
      }
      result_ = ResultSet{};
      result_.open = true;
      result_.described = true;
      result_.fields = d->fields;
      last_fields_ = d->fields;
      return;
    }
    FlushResult(time, type == be::kCommandComplete);
    auto line = [&](absl::string_view text) { Line(time, kServer, text); };
    switch (type) {
      case be::kCommandComplete:
        Decoded(kServer, type, raw, offset, time, cpg::ParseCommandComplete(body),
                [&](const cpg::CommandComplete& c) {
                  line(absl::StrCat("CommandComplete: ", Text(c.tag)));
                });
        break;
      case be::kErrorResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseErrorResponse(body),
                [&](const cpg::ErrorResponse& e) { Fields(time, "ErrorResponse", e); });
        break;
      case be::kNoticeResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseNoticeResponse(body),
                [&](const cpg::NoticeResponse& n) { Fields(time, "NoticeResponse", n); });
        break;
      case be::kReadyForQuery:
        Decoded(
            kServer, type, raw, offset, time, cpg::ParseReadyForQuery(body),
            [&](const cpg::ReadyForQuery& r) {
              const char* what = r.status == cpg::TransactionStatus::kIdle ? "idle"
                                 : r.status == cpg::TransactionStatus::kInTransaction
                                     ? "in transaction"
                                     : "failed transaction";
              line(absl::StrFormat("ReadyForQuery: %c (%s)", static_cast<char>(r.status), what));
            });
        break;
      case be::kParameterStatus:
        Decoded(kServer, type, raw, offset, time, cpg::ParseParameterStatus(body),
                [&](const cpg::ParameterStatus& p) {
                  line(absl::StrCat("ParameterStatus: ", Text(p.name), " = ", Text(p.value)));
                });
        break;
      case be::kBackendKeyData:
        Decoded(kServer, type, raw, offset, time, cpg::ParseBackendKeyData(body),
                [&](const cpg::BackendKeyData& k) {
                  line(absl::StrFormat("BackendKeyData: pid %d", k.process_id));
                });
        break;
      case be::kAuthentication:
        Decoded(kServer, type, raw, offset, time, cpg::ParseAuthentication(body),
                [&](const cpg::Authentication& a) { line(AuthLine(a)); });
        break;
      case be::kParameterDescription:
        Decoded(kServer, type, raw, offset, time, cpg::ParseParameterDescription(body),
                [&](const cpg::ParameterDescription& p) {
                  std::vector<std::string> types;
                  for (size_t i = 0; i < p.type_oids.size(); ++i) {
                    types.push_back(absl::StrFormat("$%d %s", i + 1, TypeLabel(p.type_oids[i])));
                  }
                  line(absl::StrCat("ParameterDescription: ",
                                    types.empty() ? "no parameters" : absl::StrJoin(types, ", ")));
                });
        break;
      case be::kCopyInResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseCopyInResponse(body),
                [&](const cpg::CopyInResponse& c) { line(CopyLine("CopyInResponse", c)); });
        break;
      case be::kCopyOutResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseCopyOutResponse(body),
                [&](const cpg::CopyOutResponse& c) { line(CopyLine("CopyOutResponse", c)); });
        break;
      case be::kCopyBothResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseCopyBothResponse(body),
                [&](const cpg::CopyBothResponse& c) { line(CopyLine("CopyBothResponse", c)); });
        break;
      case be::kFunctionCallResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseFunctionCallResponse(body),
                [&](const cpg::FunctionCallResponse& f) {
                  line(absl::StrCat("FunctionCallResponse: ",
                                    Value(f.result, false, options_.max_value_chars, true).text));
                });
        break;
      case be::kNegotiateProtocolVersion:
        Decoded(kServer, type, raw, offset, time, cpg::ParseNegotiateProtocolVersion(body),
                [&](const cpg::NegotiateProtocolVersion& n) {
                  std::vector<std::string> opts;
                  for (const std::string& o : n.unrecognized_options) opts.push_back(Text(o));
                  line(absl::StrFormat(
                      "NegotiateProtocolVersion: newest minor %d%s", n.newest_minor,
                      opts.empty()
                          ? ""
                          : absl::StrCat(", unrecognized options ", absl::StrJoin(opts, ", "))));
                });
        break;
      case be::kNotificationResponse:
        Decoded(kServer, type, raw, offset, time, cpg::ParseNotificationResponse(body),
                [&](const cpg::NotificationResponse& n) {
                  line(absl::StrFormat("NotificationResponse: channel \"%s\" from pid %d",
                                       Text(n.channel), n.process_id));
                  if (!n.payload.empty()) MoreLines("payload", n.payload);
                });
        break;
      default:  // ParseComplete, BindComplete, CloseComplete, NoData, EmptyQueryResponse,
                // PortalSuspended, CopyDone: no contents.
        line(cpg::MessageName(type, false));
        if (!body.empty()) More(absl::StrFormat("(%d unexpected body bytes)", body.size()));
        break;
    }
    MaybeHexdump(raw);
  }

  static std::string AuthLine(const cpg::Authentication& a) {
    switch (a.code) {
      case cpg::AuthCode::kOk:
        return "Authentication: Ok";
      case cpg::AuthCode::kKerberosV5:
        return "Authentication: KerberosV5";
      case cpg::AuthCode::kCleartextPassword:
        return "Authentication: CleartextPassword";
      case cpg::AuthCode::kMd5Password:
        return "Authentication: MD5Password";
      case cpg::AuthCode::kGss:
        return "Authentication: GSS";
      case cpg::AuthCode::kGssContinue:
        return absl::StrFormat("Authentication: GSSContinue (%d bytes)", a.data.size());
      case cpg::AuthCode::kSspi:
        return "Authentication: SSPI";
      case cpg::AuthCode::kSasl: {
        std::vector<std::string> mechs;
        for (const std::string& m : a.sasl_mechanisms) mechs.push_back(Text(m));
        return absl::StrCat("Authentication: SASL (", absl::StrJoin(mechs, ", "), ")");
      }
      case cpg::AuthCode::kSaslContinue:
        return absl::StrFormat("Authentication: SASLContinue (%d bytes)", a.data.size());
      case cpg::AuthCode::kSaslFinal:
        return absl::StrFormat("Authentication: SASLFinal (%d bytes)", a.data.size());
    }
    return absl::StrFormat("Authentication: code %d", static_cast<int32_t>(a.code));
  }

  static std::string CopyLine(absl::string_view name, const cpg::CopyResponseFields& c) {
    return absl::StrFormat("%s: %s, %s", name, c.format == 1 ? "binary" : "text",
                           Plural(c.column_formats.size(), "column"));
  }

  // ErrorResponse / NoticeResponse: severity, SQLSTATE and message on the line; the other
  // fields a reader acts on below it. Source location fields (F, L, R) are left out.
  void Fields(int64_t time, absl::string_view name, const cpg::ResponseFields& f) {
    const absl::string_view severity =
        f.Find(cpg::field::kSeverityNonLocalized).value_or(f.severity());
    TextLines(time, kServer,
              absl::StrFormat("%s: %s  SQLSTATE %s  ", name, Text(severity), Text(f.sqlstate())),
              f.message());
    static constexpr std::array<std::pair<char, const char*>, 10> kShown = {{
        {cpg::field::kDetail, "detail"},
        {cpg::field::kHint, "hint"},
        {cpg::field::kPosition, "position"},
        {cpg::field::kWhere, "where"},
        {cpg::field::kInternalQuery, "internal query"},
        {cpg::field::kSchemaName, "schema"},
        {cpg::field::kTableName, "table"},
        {cpg::field::kColumnName, "column"},
        {cpg::field::kDataTypeName, "data type"},
        {cpg::field::kConstraintName, "constraint"},
    }};
    for (const auto& [code, label] : kShown) {
      if (auto v = f.Find(code); v.has_value() && !v->empty()) MoreLines(label, *v);
    }
  }

  void AddRow(const cpg::DataRow& row) {
    if (!result_.open) {
      // Rows without a RowDescription right before them: a portal executed after an earlier
      // Describe of its statement. Reuse that description when it fits.
      result_ = ResultSet{};
      result_.open = true;
      if (last_fields_.size() == row.columns.size()) result_.fields = last_fields_;
    }
    ++result_.row_count;
    if (result_.rows.size() >= options_.max_rows) return;
    std::vector<Cell> cells;
    cells.reserve(row.columns.size());
    for (size_t i = 0; i < row.columns.size(); ++i) {
      const bool binary = i < result_.fields.size() && result_.fields[i].format == 1;
      cells.push_back(Value(row.columns[i], binary, options_.max_value_chars, /*quote=*/false));
    }
    result_.rows.push_back(std::move(cells));
  }

  // Prints the result set collected so far. `completed`: a CommandComplete ends it. A
  // RowDescription that no row or CommandComplete follows answered a Describe.
  void FlushResult(int64_t time, bool completed) {
    if (!result_.open) return;
    ResultSet r = std::move(result_);
    result_ = ResultSet{};
    if (r.described && r.row_count == 0 && !completed) {
      std::vector<std::string> cols;
      for (const cpg::FieldDescription& f : r.fields) {
        cols.push_back(absl::StrCat(Text(f.name), " ", TypeLabel(f.type_oid),
                                    f.format == 1 ? " (binary)" : ""));
      }
      Line(time, kServer,
           absl::StrCat("RowDescription: ",
                        cols.empty() ? "no columns" : absl::StrJoin(cols, ", ")));
    } else {
      Line(time, kServer, absl::StrCat("result: ", Plural(r.row_count, "row")));
      Table(r.fields, r.rows, r.row_count);
    }
    PrintOriginals(time, r);
  }

  // The continuation lines of a result table: header, rule, `rows`, and how many of
  // `row_count` were left out.
  void Table(const std::vector<cpg::FieldDescription>& fields,
             const std::vector<std::vector<Cell>>& rows, uint64_t row_count) {
    size_t ncols = fields.size();
    for (const auto& row : rows) ncols = std::max(ncols, row.size());
    if (ncols == 0) {
      More("(no columns)");
    } else {
      std::vector<Cell> header;
      for (size_t c = 0; c < ncols; ++c) {
        if (c < fields.size()) {
          Printed p = Printable(fields[c].name, options_.max_value_chars);
          header.push_back({p.text, p.chars});
        } else {
          header.push_back({"?column?", 8});
        }
      }
      std::vector<size_t> width(ncols);
      for (size_t c = 0; c < ncols; ++c) width[c] = header[c].width;
      for (const auto& row : rows) {
        for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].width);
      }
      auto render = [&](const std::vector<Cell>& cells) {
        std::string s = "|";
        for (size_t c = 0; c < ncols; ++c) {
          const Cell empty;
          const Cell& cell = c < cells.size() ? cells[c] : empty;
          absl::StrAppend(&s, " ", cell.text, std::string(width[c] - cell.width, ' '), " |");
        }
        return s;
      };
      More(render(header));
      std::string rule = "|";
      for (size_t c = 0; c < ncols; ++c) {
        absl::StrAppend(&rule, std::string(width[c] + 2, '-'), c + 1 < ncols ? "+" : "|");
      }
      More(rule);
      for (const auto& row : rows) More(render(row));
    }
    if (row_count > rows.size()) {
      More(absl::StrCat("... ", Plural(row_count - rows.size(), "more row")));
    }
  }

  void FlushCopy(Side side) {
    Stream& s = streams_[side];
    if (s.copy_messages == 0) return;
    Line(s.copy_time, side,
         absl::StrCat(
             "COPY data ", s.copy_bytes, " bytes",
             s.copy_messages > 1 ? absl::StrCat(" in ", s.copy_messages, " messages") : ""));
    s.copy_bytes = s.copy_messages = 0;
  }

  void FlushSummaries(int64_t time) {
    FlushCopy(kAgent);
    FlushCopy(kServer);
    FlushResult(time, false);
  }

  const PgTimelineOptions& options_;
  const int64_t start_;
  std::string out_;
  std::array<Stream, 2> streams_;
  std::array<OriginalStream, 2> originals_;
  ResultSet result_;
  std::vector<cpg::FieldDescription> last_fields_;
  // 'S' or 'G' while the agent's SSLRequest / GSSENCRequest awaits its one-byte answer.
  char ssl_answer_due_ = 0;
  // The session recorded statement literals and bound values withheld: an empty value is
  // shown as withheld, not as an empty string.
  bool literals_withheld_ = false;
};

}  // namespace

bool IsPostgresRecording(const std::vector<v1::Record>& records) {
  return !records.empty() && records.front().has_open() &&
         records.front().open().protocol() == "postgres";
}

std::string FormatPgTimeline(const std::vector<v1::Record>& records,
                             const PgTimelineOptions& options) {
  std::string out = record::FormatTimelineHeader(records);
  if (records.empty()) return out;
  PgTimeline timeline(options, records.front().time_unix_nanos());
  for (size_t i = records.front().has_open() ? 1 : 0; i < records.size(); ++i) {
    timeline.OnRecord(records[i]);
  }
  timeline.Finish(records.back().time_unix_nanos());
  out.append(timeline.Take());
  out.append(record::FormatTimelineTrailer(records));
  return out;
}

}  // namespace interlock::replay
