// PostgreSQL-aware replay: turns the records of a recording whose SessionOpen.protocol is
// "postgres" into a decoded timeline — statements, Bind parameters, result sets as tables,
// errors — instead of raw byte previews (record/replay.h FormatTimeline).
//
//   record::Recording rec = record::ReadRecording(bytes);
//   if (IsPostgresRecording(rec.records)) std::cout << FormatPgTimeline(rec.records, {});
//
// The header, event, close and seal lines are FormatTimeline's. Each protocol message gets one
// line (plus indented continuation lines) at the time of the record that completed it; a
// result set (RowDescription and its DataRows) becomes one table, printed when it ends; runs of
// CopyData become one "COPY data N bytes" line:
//
//        +0.120ms  agent   StartupMessage protocol 3.0
//                            user = "alice"  (ignored: interlockd logs in as the configured role)
//        +1.410ms  server  Authentication: Ok
//        +9.000ms  agent   Query: SELECT id, name FROM accounts
//                            WHERE balance > 500
//       +10.250ms  server  result: 3 rows
//                            | id | name  |
//                            |----+-------|
//                            | 1  | alice |
//                            | 2  | NULL  |
//                            | 3  | carol |
//       +10.250ms  server  CommandComplete: SELECT 3
//       +10.250ms  server  ReadyForQuery: I (idle)
//       +11.000ms  server  ErrorResponse: ERROR  SQLSTATE 42P01  relation "nope" does not exist
//
// "agent" lines are what the agent sent (DIRECTION_TO_UPSTREAM); "server" lines what it
// received (DIRECTION_TO_AGENT), whether from the server or from interlockd in its place.
// Messages split across records or coalesced in one are reassembled per direction.
//
// Formatting never fails. A message whose framing is fine but whose body does not parse is
// shown as undecodable and decoding goes on with the next message. Bytes that cannot be framed
// (unknown type byte, impossible length) are shown as "undecodable bytes (N) at offset X"
// with a preview; the direction has lost sync, so its later records are shown raw, as
// FormatTimeline shows them. Everything printed from the recording is escaped: control bytes
// and invalid UTF-8 never reach the terminal. Password messages are never printed.
//
// Sealed originals (record.proto SealedData: the messages masking replaced, as the resource
// sent them) are shown under the masked result they belong to. Opened with the auditor key
// (raw.originals, record::UnsealOriginals), their DataRows become a second table:
//       +10.250ms  server  result: 2 rows
//                            | id | email            |
//                            |----+------------------|
//                            | 1  | a***@example.com |
//                            | 2  | b***@example.com |
//       +10.250ms  server  original rows (sealed, before masking): 2 rows
//                            | id | email             |
//                            |----+-------------------|
//                            | 1  | alice@example.com |
//                            | 2  | bob@example.com   |
// and their other messages (CopyData) one "original ..." line each. Not opened, the result
// set says "[sealed originals: 96 bytes in 1 record]". Originals that arrive with no result set
// open are printed at once, under the last RowDescription's columns.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "interlock/v1/record.pb.h"
#include "userspace/record/replay.h"

namespace interlock::replay {

struct PgTimelineOptions {
  // Rows shown per result set (0: none); the others are counted ("... 12 more rows").
  size_t max_rows = 50;
  // Cap, in characters, of one table cell and of one Bind/FunctionCall parameter; longer
  // values are cut and marked "... (N bytes)". Statement text is never cut.
  size_t max_value_chars = 80;
  // Preview length of raw and undecodable bytes. With raw.hexdump each decoded message is
  // followed by a hexdump of its bytes (DataRow and CopyData excepted: they are summarized).
  record::TimelineOptions raw;
};

// The decoded timeline (see the file comment). Works on any records; those of a non-postgres
// session simply decode badly and fall back to raw lines.
std::string FormatPgTimeline(const std::vector<v1::Record>& records,
                             const PgTimelineOptions& options);

// True when records[0] is a SessionOpen with protocol "postgres".
bool IsPostgresRecording(const std::vector<v1::Record>& records);

}  // namespace interlock::replay
