// SftpTracker: the file operations an agent performs over an SSH "sftp" subsystem channel,
// read from the channel's two byte streams without touching them. The proxy relays the
// bytes as they are and hands each direction's pieces to the tracker; the tracker matches
// requests to the server's answers by request id and reports each file operation once it
// is complete, for the audit log.
//
//   SftpTracker t;
//   t.FromClient(client_bytes);   // channel data client -> server, any piece size
//   t.FromServer(server_bytes);   // channel data server -> client
//   for (const FileOp& op : t.TakeOps()) Audit(op);
//   ...
//   for (const FileOp& op : t.Finish()) Audit(op);   // channel closed: files left open
//   if (!t.status().ok()) AuditError(t.status());    // tracking stopped (fail closed)
//
// Protocol: SFTP version 3, draft-ietf-secsh-filexfer-02 (what OpenSSH speaks), and the
// OpenSSH extensions of PROTOCOL (posix-rename, hardlink, fsync, statvfs, fstatvfs,
// lsetstat, limits, expand-path, home-directory, users-groups-by-id) plus copy-data
// (draft-ietf-secsh-filexfer-extensions-00). An open file is one event with the bytes
// read and written through its handle, reported when the handle is closed.
//
// Pure and bounded: no I/O; at most one packet per direction is held (and of WRITE and
// DATA packets only their header: payloads are counted, never kept); every length is
// checked against the packet and the kMax… constants below. Hostile or broken input
// stops tracking with a status; it never crashes and never grows memory without bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::sftp {

// A packet's length field (type byte + payload) may not exceed this, either direction:
// OpenSSH's SFTP_MAX_MSG_LENGTH (256 KiB) plus room for a WRITE's header.
inline constexpr uint32_t kMaxPacketLength = 256 * 1024 + 13;
// Requests sent and not yet answered.
inline constexpr size_t kMaxOutstandingRequests = 1024;
// Handles the server returned and the client has not closed.
inline constexpr size_t kMaxOpenHandles = 1024;
// A handle is an opaque string of at most this many bytes (draft-02 section 3).
inline constexpr size_t kMaxHandleLength = 256;
// A path (or extended request name) longer than this stops tracking: Linux refuses paths
// over PATH_MAX (4096), so no real client sends one, and pending requests stay small.
inline constexpr size_t kMaxPathLength = 8192;
// The message of a STATUS kept in FileOp::status; longer ones are cut.
inline constexpr size_t kMaxStatusMessage = 256;

// SSH_FXP_* packet types (draft-02 section 3).
enum FxpType : uint8_t {
  kFxpInit = 1,
  kFxpVersion = 2,
  kFxpOpen = 3,
  kFxpClose = 4,
  kFxpRead = 5,
  kFxpWrite = 6,
  kFxpLstat = 7,
  kFxpFstat = 8,
  kFxpSetstat = 9,
  kFxpFsetstat = 10,
  kFxpOpendir = 11,
  kFxpReaddir = 12,
  kFxpRemove = 13,
  kFxpMkdir = 14,
  kFxpRmdir = 15,
  kFxpRealpath = 16,
  kFxpStat = 17,
  kFxpRename = 18,
  kFxpReadlink = 19,
  kFxpSymlink = 20,
  kFxpStatus = 101,
  kFxpHandle = 102,
  kFxpData = 103,
  kFxpName = 104,
  kFxpAttrs = 105,
  kFxpExtended = 200,
  kFxpExtendedReply = 201,
};

// One file operation, complete (its request and the server's answer seen).
struct FileOp {
  // "open" (reported when the handle is closed, or when the stream ends: one event per
  // opened file with its bytes), "opendir" (a listing, at close), "remove", "rename"
  // (SSH_FXP_RENAME and posix-rename@openssh.com), "mkdir", "rmdir", "setstat" (incl.
  // fsetstat via the handle's path, lsetstat@openssh.com), "symlink", "link"
  // (hardlink@openssh.com), "copy-data", and "extended:<name>" for an extended request
  // this tracker does not know. Read-only metadata requests (stat, lstat, fstat, realpath,
  // readlink, statvfs, fstatvfs, limits, expand-path, home-directory, users-groups-by-id,
  // fsync) are not reported: they are counted in SftpTracker::metadata_requests().
  std::string op;
  // As the client sent it (bytes; may be non-UTF-8). For fsetstat and copy-data: the path
  // the handle was opened with ("" when the handle was opened before tracking began).
  std::string path;
  // rename / symlink / link / copy-data: the second path, the name being created, on the
  // wire order of OpenSSH: SSH_FXP_SYMLINK carries (target, linkpath) there — the reverse
  // of draft-02 — so for symlink `path` is what the link points to and `target` is the
  // new link. copy-data: the path of the handle written to.
  std::string target;
  // open: the pflags as words, in this order: "read", "write", "append", "create",
  // "truncate", "exclusive".
  std::vector<std::string> flags;
  uint64_t bytes_read = 0;     // open: data the server returned for READs on the handle
  uint64_t bytes_written = 0;  // open: data the client sent in WRITEs on the handle;
                               // copy-data: the length asked for (0: to end of file)
  // The server's answer: "ok", or the SSH_FX_* name lowercased without the prefix
  // ("no_such_file", "permission_denied", "failure", ...; "status_<n>" for a code draft-02
  // does not name) followed by ": <message>" when the server sent one. For open: the
  // OPEN's status when it failed, else the CLOSE's. Set by the tracker itself:
  // "not_closed" (Finish: the handle was still open), "no_response" (Finish: the request
  // was never answered).
  std::string status;

  friend bool operator==(const FileOp&, const FileOp&) = default;
};

class SftpTracker {
 public:
  SftpTracker() = default;

  // Channel data client -> server (the server's stdin) and server -> client (its stdout),
  // in any piece sizes. Ignored after an error or Finish().
  void FromClient(absl::string_view bytes);
  void FromServer(absl::string_view bytes);

  // Operations completed since the last call, in completion order.
  std::vector<FileOp> TakeOps();

  // The channel ended: files still open are reported (status "not_closed", in the order
  // they were opened), then requests that change the file system and were never answered
  // (status "no_response"), after anything TakeOps() has not returned yet. Later bytes are
  // ignored. After an error it returns only what completed before the error.
  std::vector<FileOp> Finish();

  // OK, or why tracking stopped: InvalidArgument for a malformed or unexpected packet,
  // ResourceExhausted for a packet or table over its kMax… limit, FailedPrecondition for
  // a protocol version other than 3. After an error the tracker ignores further bytes and
  // reports nothing more; the caller audits the error.
  const absl::Status& status() const { return status_; }

  // Read-only metadata requests seen (see FileOp::op).
  uint64_t metadata_requests() const { return metadata_requests_; }

 private:
  // One direction's packet being assembled: the 4-byte length, then the packet (type byte
  // and payload), of which only the first `keep` bytes are held.
  struct Framer {
    char length_bytes[4] = {};
    size_t length_have = 0;
    uint32_t length = 0;     // the packet's length field, valid once length_have == 4
    uint32_t remaining = 0;  // packet bytes still to come
    size_t keep = 0;         // how many of the packet's bytes to hold
    std::string held;        // type byte + the payload's first keep - 1 bytes
  };
  enum class Kind : uint8_t;
  class Reader;  // bounds-checked fields of one packet (sftp_tracker.cc)
  enum class Field : uint8_t;
  struct Layout;
  // A request sent and not yet answered.
  struct Pending {
    Kind kind;
    uint8_t type = 0;
    std::string path;
    std::string target;
    std::string handle;
    uint32_t pflags = 0;
    uint64_t length = 0;
    std::string op;  // kChange: FileOp::op
  };
  // A handle the server returned.
  struct Handle {
    uint64_t order = 0;  // when it was opened, for Finish()
    bool dir = false;
    std::string path;
    uint32_t pflags = 0;
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
  };

  void Feed(bool client, absl::string_view bytes);
  absl::Status Frame(bool client, absl::string_view* bytes);
  absl::Status OnClientPacket(uint32_t length, absl::string_view held);
  absl::Status OnServerPacket(uint32_t length, absl::string_view held);
  absl::Status OnExtendedRequest(uint32_t id, Reader& r);
  absl::Status OnResponse(uint8_t type, uint32_t id, Reader& r);
  absl::Status ReadLayout(const Layout& layout, Reader& r, Pending* p);
  absl::Status AddPending(uint32_t id, Pending p);
  void ReportHandle(const std::string& handle, Handle h, std::string status);
  FileOp OpFromPending(const Pending& p, std::string status) const;
  std::string PathOfHandle(const std::string& handle) const;

  absl::Status status_;
  bool finished_ = false;
  bool client_init_seen_ = false;
  bool server_version_seen_ = false;
  Framer client_;
  Framer server_;
  uint64_t metadata_requests_ = 0;
  uint64_t handle_order_ = 0;
  absl::flat_hash_map<uint32_t, Pending> pending_;
  absl::flat_hash_map<std::string, Handle> handles_;
  std::vector<FileOp> done_;
};

}  // namespace interlock::codec::sftp
