// SSH-aware replay: the records of a recording whose SessionOpen.protocol is "ssh"
// (record.proto SshEvent) as one section per channel — what the agent asked for and what
// interlockd decided, then what the channel carried, as text — instead of raw record lines
// (record/replay.h FormatTimeline).
//
//   channel 0
//        +0.120ms  open        session
//        +0.300ms  pty-req     xterm-256color 80x24  -> forwarded
//        +0.310ms  shell       interactive shell (TERM xterm-256color, 80x24)  -> allow (rule ops-shell)
//        +0.900ms  stdout      $ ls
//        +1.200ms  stdin       > ls\r
//        +1.250ms  stdout
//                              notes.txt	report.pdf
//                              $
//        +2.000ms  window      120x40
//        +3.000ms  eof         from agent
//        +3.100ms  exit        status 0
//        +3.100ms  close
//
//   channel 1
//        +4.000ms  open        session
//        +4.010ms  exec        rm -rf /srv/data  -> deny (rule no-deletes: destructive command)
//        +4.010ms  interlockd  interlock: denied by rule no-deletes
//        +4.010ms  exit        status 126  (set by interlockd)
//
//        +5.000ms  close  closed  7 bytes to upstream, 60 bytes to agent, duration 5.000ms
//        +5.000ms  seal   key 9a3c... signature 64 bytes (run verify to check it)
//
// Channels are listed in the order they first appear; a channel number used again after its
// close (SshEvent.channel is unique only while the channel is open) starts a new section.
// Within a channel, records are shown in file order. Consecutive data of one stream is shown
// as one block at the time of its first record: stdout, stderr, and "interlockd" for the
// bytes interlockd itself wrote; stdin as the typed input ("> "), a line at a time (a block
// ends at CR or LF). "\r\n" ends a line; every other control byte, invalid UTF-8 and
// terminal-reordering code point is escaped (common::Printable), tabs and newlines kept.
// Records that are not SSH events (close, seal, events) follow the channels, as
// FormatTimeline shows them.
//
// Never fails: records out of order, data before its channel's open, channels never opened,
// unknown streams and empty events are shown as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "interlock/v1/record.pb.h"
#include "userspace/record/replay.h"

namespace interlock::replay {

struct SshTimelineOptions {
  // raw.preview_chars caps the lines of non-SSH records; with raw.hexdump every data block is
  // followed by a hexdump of it (at most raw.hexdump_max_bytes, 0 = all).
  record::TimelineOptions raw;
  // At most this many bytes of each block of data (output or typed input) are shown; the
  // rest is counted ("... 1234 more bytes").
  size_t data_preview_bytes = 4096;
};

std::string FormatSshTimeline(const std::vector<v1::Record>& records, const SshTimelineOptions& options);

// One channel of an SSH session: its SshEvent records, in file order (pointers into the
// vector given to SplitSshChannels, which must outlive this).
struct SshChannelRecords {
  uint32_t channel = 0;
  std::vector<const v1::Record*> records;
  bool opened = false;  // an SshChannelOpen was recorded for it
};

// The channels of `records`, in order of first appearance. A channel number that appears
// again after its SshChannelEnd "close", or opens a second time, starts a new entry.
std::vector<SshChannelRecords> SplitSshChannels(const std::vector<v1::Record>& records);

}  // namespace interlock::replay
