// One terminal channel of an SSH session's recording as an asciicast v2 file
// (https://docs.asciinema.org/manual/asciicast/v2/), for `asciinema play`, `asciinema cat`
// or the asciinema web player: `interlock replay ID --asciicast`.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::string cast, ExportAsciicast(rec.records, {.channel = 2}));
//
//   {"version": 2, "width": 80, "height": 24, "timestamp": 1767225600,    (one line)
//    "env": {"TERM": "xterm"}, "title": "build-host sess-1 channel 2"}
//   [0.120000, "o", "$ "]
//   [1.250000, "o", "ls\r\nnotes.txt\r\n$ "]
//   [2.000000, "r", "120x40"]
//
// The header's width and height are the channel's pty-req size (80x24 without one), its TERM
// the pty-req's (no "env" without one), its timestamp the session's start (the SessionOpen
// record's time, in whole Unix seconds). Event times are seconds since that start, never
// decreasing (a record older than the one before it is shown at the earlier one's time).
// "o" events carry what the agent's terminal received: stdout, stderr, and what interlockd
// itself wrote (a denial's message); "i" events the agent's stdin, only with `input` (typed
// input includes passwords); "r" events the channel's window changes ("COLSxROWS").
//
// Data is decoded per stream as asciinema decodes a terminal's output: a UTF-8 character
// split across records is carried to the next event of its stream, never split between two
// events; invalid sequences become U+FFFD (one per maximal invalid subpart, as Python's and
// WHATWG's decoders do); an incomplete character left at the channel's end becomes U+FFFD.
// Every line is valid JSON. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "interlock/v1/record.pb.h"

namespace interlock::replay {

struct AsciicastOptions {
  // The channel (SshEvent.channel; its first use when the number was used again). Unset:
  // the first channel with a shell or pty-req request.
  std::optional<uint32_t> channel;
  // Also write the agent's stdin as "i" events.
  bool input = false;
};

// The asciicast of one channel of `records` (see the file comment), newline-terminated lines.
// Errors: FAILED_PRECONDITION when the recording is not an SSH session (no SessionOpen with
// protocol "ssh"); NOT_FOUND when it has no such channel, or, with no channel given, no
// channel with a shell or pty (the message lists the channels there are).
absl::StatusOr<std::string> ExportAsciicast(const std::vector<v1::Record>& records,
                                            const AsciicastOptions& options = {});

}  // namespace interlock::replay
