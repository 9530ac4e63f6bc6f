// Test helpers for interlock_codec_sftp, shared by the unit tests and the fuzz target:
// an SFTP v3 packet encoder, a session as a list of (direction, bytes) steps, and the
// tracker's output of a session as text so that two runs compare with ==.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/sftp/sftp_tracker.h"

namespace interlock::codec::sftp::testing {

inline std::string U32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}
inline std::string U64(uint64_t v) { return U32(v >> 32) + U32(static_cast<uint32_t>(v)); }
inline std::string Str(absl::string_view s) { return U32(s.size()) + std::string(s); }
// A packet: uint32 length, byte type, payload (draft-02 section 3).
inline std::string Packet(uint8_t type, absl::string_view payload) {
  return U32(payload.size() + 1) + static_cast<char>(type) + std::string(payload);
}

// One piece of a session: from the client (true) or the server, in the order it happened.
struct Step {
  bool client = true;
  std::string bytes;
};
using Session = std::vector<Step>;

// The tracker's whole output for a session, as text: each op, then Finish()'s, then the
// metadata count and the status.
inline std::string Describe(const FileOp& op) {
  return absl::StrCat(op.op, "|", op.path, "|", op.target, "|", absl::StrJoin(op.flags, ","),
                      "|r=", op.bytes_read, "|w=", op.bytes_written, "|", op.status);
}
inline std::string Transcript(SftpTracker& t, const std::vector<FileOp>& ops) {
  std::string out;
  for (const FileOp& op : ops) absl::StrAppend(&out, Describe(op), "\n");
  absl::StrAppend(&out, "metadata=", t.metadata_requests(), "\nstatus=", t.status().ToString());
  return out;
}

// Feeds each step split into the pieces `split` makes of it (a function from bytes to a
// vector of string_views) and returns the transcript.
template <typename Split>
std::string Run(const Session& s, Split split) {
  SftpTracker t;
  std::vector<FileOp> ops;
  for (const Step& step : s) {
    for (absl::string_view piece : split(step.bytes)) {
      step.client ? t.FromClient(piece) : t.FromServer(piece);
    }
    for (FileOp& op : t.TakeOps()) ops.push_back(std::move(op));
  }
  for (FileOp& op : t.Finish()) ops.push_back(std::move(op));
  return Transcript(t, ops);
}

inline std::vector<absl::string_view> Whole(absl::string_view b) { return {b}; }
inline std::vector<absl::string_view> Bytes(absl::string_view b) {
  std::vector<absl::string_view> out;
  for (size_t i = 0; i < b.size(); ++i) out.push_back(b.substr(i, 1));
  return out;
}
// Deterministic pseudo-random pieces of 1 to 64 bytes (or larger, now and then).
inline std::vector<absl::string_view> RandomSplit(absl::string_view b, uint32_t seed) {
  std::vector<absl::string_view> out;
  while (!b.empty()) {
    seed = seed * 1103515245u + 12345u;
    size_t n = 1 + (seed >> 16) % ((seed & 0x8000) ? 4096 : 64);
    n = std::min(n, b.size());
    out.push_back(b.substr(0, n));
    b.remove_prefix(n);
  }
  return out;
}

// Packets of a stream by their length fields; a tail too short for its length is one last
// piece.
inline std::vector<std::string> Packets(absl::string_view stream) {
  std::vector<std::string> out;
  while (!stream.empty()) {
    size_t n = stream.size();
    if (stream.size() >= 4) {
      const auto* u = reinterpret_cast<const unsigned char*>(stream.data());
      const uint64_t len = (uint64_t{u[0]} << 24) | (u[1] << 16) | (u[2] << 8) | u[3];
      n = std::min<uint64_t>(stream.size(), 4 + len);
    }
    out.emplace_back(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  return out;
}

// A captured session (client stream, server stream) as steps, for a server that answers
// every packet with exactly one packet in order (OpenSSH's sftp-server): the client's
// packet i, then the server's packet i.
inline Session Alternate(absl::string_view client, absl::string_view server) {
  std::vector<std::string> c = Packets(client), s = Packets(server);
  Session out;
  for (size_t i = 0; i < std::max(c.size(), s.size()); ++i) {
    if (i < c.size()) out.push_back({true, c[i]});
    if (i < s.size()) out.push_back({false, s[i]});
  }
  return out;
}

// The fuzz input format: records of [byte direction: even = client][uint32 length][bytes]
// (a length past the end takes what is left).
inline Session ParseRecords(absl::string_view in) {
  Session out;
  while (in.size() >= 5) {
    const bool client = (static_cast<uint8_t>(in[0]) & 1) == 0;
    const auto* u = reinterpret_cast<const unsigned char*>(in.data() + 1);
    const uint64_t len = (uint64_t{u[0]} << 24) | (u[1] << 16) | (u[2] << 8) | u[3];
    in.remove_prefix(5);
    const size_t n = std::min<uint64_t>(len, in.size());
    out.push_back({client, std::string(in.substr(0, n))});
    in.remove_prefix(n);
  }
  return out;
}
inline std::string Records(const Session& s) {
  std::string out;
  for (const Step& step : s) {
    out += static_cast<char>(step.client ? 0 : 1);
    out += U32(step.bytes.size()) + step.bytes;
  }
  return out;
}

}  // namespace interlock::codec::sftp::testing
