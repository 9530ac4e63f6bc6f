#include "userspace/replay/ssh_replay.h"

#include <algorithm>
#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "userspace/common/printable.h"

namespace interlock::replay {

namespace {

constexpr int kIndent = 28;  // time (14) + 2 + label (10) + 2

std::string Text(absl::string_view s) { return common::Visible(s); }

// "+12.345ms", or "-1.000ms" for a record older than the session's first.
std::string At(int64_t nanos_since_start) {
  if (nanos_since_start >= 0) return record::FormatRelativeTime(nanos_since_start);
  return absl::StrFormat("-%.3fms", -static_cast<double>(nanos_since_start) / 1e6);
}

std::string Size(uint32_t cols, uint32_t rows) { return absl::StrCat(cols, "x", rows); }

// "  -> allow (rule r1: why)": what interlockd made of a request.
std::string Decision(const v1::SshRequest& q) {
  if (q.decision().empty() && q.rule_id().empty() && q.reason().empty()) return "";
  std::string out = absl::StrCat("  -> ", q.decision().empty() ? "(no decision)" : Text(q.decision()));
  if (q.decision() == "review") out.append(" (held for approval)");
  if (!q.rule_id().empty() || !q.reason().empty()) {
    out.append(" (");
    if (!q.rule_id().empty()) absl::StrAppend(&out, "rule ", Text(q.rule_id()));
    if (!q.rule_id().empty() && !q.reason().empty()) out.append(": ");
    out.append(Text(q.reason()));
    out.append(")");
  }
  return out;
}

const char* StreamLabel(v1::SshStream s) {
  switch (s) {
    case v1::SSH_STREAM_STDIN:
      return "stdin";
    case v1::SSH_STREAM_STDOUT:
      return "stdout";
    case v1::SSH_STREAM_STDERR:
      return "stderr";
    case v1::SSH_STREAM_INTERLOCK:
      return "interlockd";
    default:
      return nullptr;
  }
}

// Consecutive data of one stream of one channel.
struct Block {
  int stream = 0;  // v1::SshStream, or an unknown number as recorded
  int64_t time = 0;
  std::string bytes;   // the first `keep` bytes
  uint64_t total = 0;  // all of them
  bool empty() const { return total == 0; }
};

class ChannelSection {
 public:
  ChannelSection(const SshTimelineOptions& options, int64_t start, std::string* out)
      : options_(options), start_(start), out_(*out) {}

  void Add(const v1::Record& r) {
    const v1::SshEvent& e = r.ssh();
    const int64_t t = r.time_unix_nanos();
    if (e.has_data()) {
      AddData(e.data(), t);
      return;
    }
    FlushAll();
    switch (e.kind_case()) {
      case v1::SshEvent::kOpen:
        Line(t, "open", e.open().type().empty() ? "(no type)" : Text(e.open().type()));
        break;
      case v1::SshEvent::kRequest:
        AddRequest(e.request(), t);
        break;
      case v1::SshEvent::kExit:
        AddExit(e.exit(), t);
        break;
      case v1::SshEvent::kEnd:
        if (e.end().kind() == "eof_from_agent") {
          Line(t, "eof", "from agent");
        } else if (e.end().kind() == "eof_from_upstream") {
          Line(t, "eof", "from upstream");
        } else if (e.end().kind() == "close") {
          Line(t, "close", "");
        } else {
          Line(t, "end", e.end().kind().empty() ? "(no kind)" : Text(e.end().kind()));
        }
        break;
      default:
        Line(t, "?", "(ssh event with no kind)");
        break;
    }
  }

  void Finish() { FlushAll(); }

 private:
  void Line(int64_t time, absl::string_view label, absl::string_view text) {
    if (text.empty()) {
      absl::StrAppendFormat(&out_, "%14s  %s\n", At(time - start_), label);
    } else {
      absl::StrAppendFormat(&out_, "%14s  %-10s  %s\n", At(time - start_), label, text);
    }
  }
  void More(absl::string_view text) {
    if (text.empty()) {
      out_.push_back('\n');
    } else {
      absl::StrAppendFormat(&out_, "%*s%s\n", kIndent, "", text);
    }
  }

  void AddRequest(const v1::SshRequest& q, int64_t t) {
    const std::string decision = Decision(q);
    const std::string& type = q.type();
    if (type == "exec") {
      Line(t, "exec", absl::StrCat(q.command().empty() ? "(empty command)" : Text(q.command()), decision));
    } else if (type == "shell") {
      const std::string pty = have_pty_ ? absl::StrCat("TERM ", Text(term_), ", ", Size(cols_, rows_)) : "no pty";
      Line(t, "shell", absl::StrCat("interactive shell (", pty, ")", decision));
    } else if (type == "subsystem") {
      Line(t, "subsystem", absl::StrCat(Text(q.command()), decision));
    } else if (type == "pty-req") {
      have_pty_ = true;
      term_ = q.term();
      cols_ = q.cols();
      rows_ = q.rows();
      Line(t, "pty-req", absl::StrCat(term_.empty() ? "(no TERM)" : Text(term_), " ", Size(cols_, rows_), decision));
    } else if (type == "window-change") {
      cols_ = q.cols();
      rows_ = q.rows();
      Line(t, "window", absl::StrCat(Size(cols_, rows_), decision));
    } else {
      // env, signal, and what interlockd refuses (direct-tcpip, tcpip-forward, x11-req, ...).
      const std::string what = Text(q.command());
      Line(t, type.empty() ? "request" : Text(type),
           what.empty() ? std::string(absl::StripLeadingAsciiWhitespace(decision)) : absl::StrCat(what, decision));
    }
  }

  void AddExit(const v1::SshExit& x, int64_t t) {
    std::string text = x.signal().empty() ? absl::StrCat("status ", x.status())
                                          : absl::StrCat("signal ", Text(x.signal()));
    if (x.core_dumped()) text.append(" (core dumped)");
    if (x.by_interlock()) text.append("  (set by interlockd)");
    Line(t, "exit", text);
  }

  size_t Keep() const {
    size_t keep = options_.data_preview_bytes;
    if (options_.raw.hexdump) {
      keep = std::max(keep, options_.raw.hexdump_max_bytes == 0 ? std::numeric_limits<size_t>::max()
                                                               : options_.raw.hexdump_max_bytes);
    }
    return keep;
  }

  static void Append(Block& b, absl::string_view payload, size_t keep) {
    if (b.bytes.size() < keep) absl::StrAppend(&b.bytes, payload.substr(0, keep - b.bytes.size()));
    b.total += payload.size();
  }

  void AddData(const v1::SshData& d, int64_t t) {
    const absl::string_view payload = d.payload();
    if (d.stream() == v1::SSH_STREAM_STDIN) {
      if (input_.empty()) {
        input_.time = t;
        input_.stream = d.stream();
      }
      Append(input_, payload, Keep());
      // A line typed (or sent) ends the input block; the output echoed so far goes first
      // when it started first.
      if (payload.find_first_of("\r\n") != absl::string_view::npos) FlushAll();
      return;
    }
    if (!output_.empty() && output_.stream != d.stream()) Flush(output_);
    if (output_.empty()) {
      output_.time = t;
      output_.stream = d.stream();
    }
    Append(output_, payload, Keep());
  }

  static std::string Label(int stream) {
    const char* known = StreamLabel(static_cast<v1::SshStream>(stream));
    return known != nullptr ? known : absl::StrCat("stream ", stream);
  }

  void FlushAll() {
    if (!input_.empty() && (output_.empty() || input_.time < output_.time)) {
      Flush(input_);
      Flush(output_);
    } else {
      Flush(output_);
      Flush(input_);
    }
  }

  // Prints `b` as display lines: typed input a line per CR or LF (CR LF counts as one), with
  // the line end shown escaped; output a line per LF (or CR LF), escaped but for tabs.
  void Flush(Block& b) {
    if (b.empty()) return;
    const bool typed = b.stream == v1::SSH_STREAM_STDIN;
    const absl::string_view shown = absl::string_view(b.bytes).substr(0, options_.data_preview_bytes);
    size_t pos = 0;
    while (pos < shown.size()) {
      size_t end = shown.find_first_of(typed ? "\r\n" : "\n", pos);
      end = end == absl::string_view::npos ? shown.size() : end + 1;
      if (typed && end < shown.size() && shown[end - 1] == '\r' && shown[end] == '\n') ++end;
      absl::string_view line = shown.substr(pos, end - pos);
      std::string text;
      if (typed) {
        text = absl::StrCat("> ", Text(line));
      } else {
        if (absl::ConsumeSuffix(&line, "\n")) absl::ConsumeSuffix(&line, "\r");
        text = common::Printable(line, 0, /*keep_tabs=*/true).text;
      }
      if (pos == 0) {
        Line(b.time, Label(b.stream), text);
      } else {
        More(text);
      }
      pos = end;
    }
    EndBlock(b);
  }

  void EndBlock(Block& b) {
    const uint64_t shown = std::min<uint64_t>(b.total, options_.data_preview_bytes);
    if (b.total > shown) More(absl::StrCat("... ", b.total - shown, " more bytes"));
    if (options_.raw.hexdump) out_.append(record::Hexdump(b.bytes, options_.raw.hexdump_max_bytes));
    b = Block{};
  }

  const SshTimelineOptions& options_;
  const int64_t start_;
  std::string& out_;
  Block output_;
  Block input_;
  // The channel's terminal, from its pty-req and window changes.
  bool have_pty_ = false;
  std::string term_;
  uint32_t cols_ = 0;
  uint32_t rows_ = 0;
};

}  // namespace

std::vector<SshChannelRecords> SplitSshChannels(const std::vector<v1::Record>& records) {
  std::vector<SshChannelRecords> out;
  struct Current {
    size_t index;
    bool closed = false;
  };
  std::map<uint32_t, Current> current;
  for (const v1::Record& r : records) {
    if (!r.has_ssh()) continue;
    const v1::SshEvent& e = r.ssh();
    auto it = current.find(e.channel());
    if (it == current.end() || it->second.closed || (e.has_open() && out[it->second.index].opened)) {
      out.push_back({.channel = e.channel()});
      it = current.insert_or_assign(e.channel(), Current{.index = out.size() - 1}).first;
    }
    SshChannelRecords& ch = out[it->second.index];
    ch.records.push_back(&r);
    if (e.has_open()) ch.opened = true;
    if (e.has_end() && e.end().kind() == "close") it->second.closed = true;
  }
  return out;
}

std::string FormatSshTimeline(const std::vector<v1::Record>& records, const SshTimelineOptions& options) {
  std::string out = record::FormatTimelineHeader(records);
  if (records.empty()) return out;
  const int64_t start = records.front().time_unix_nanos();
  for (const SshChannelRecords& ch : SplitSshChannels(records)) {
    absl::StrAppend(&out, "channel ", ch.channel, ch.opened ? "" : "  (no channel open recorded)", "\n");
    ChannelSection section(options, start, &out);
    for (const v1::Record* r : ch.records) section.Add(*r);
    section.Finish();
    out.push_back('\n');
  }
  for (size_t i = records.front().has_open() ? 1 : 0; i < records.size(); ++i) {
    if (!records[i].has_ssh()) out.append(record::FormatTimelineRecord(records[i], start, options.raw));
  }
  out.append(record::FormatTimelineTrailer(records));
  return out;
}

}  // namespace interlock::replay
