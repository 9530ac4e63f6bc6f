// Blocking client connections for threads that may wait (audit sink workers, never the event
// loop): a TCP stream, optionally TLS with full verification of the server, and a connected
// UDP socket. Every wait is bounded by the timeout (connect, each send and each receive).
//
//   BlockingClientOptions o{.host = "siem.example", .port = 6514, .tls = true,
//                           .ca_file = "/etc/interlock/siem-ca.pem"};
//   INTERLOCK_ASSIGN_OR_RETURN(auto conn, BlockingStream::Connect(o));
//   INTERLOCK_RETURN_IF_ERROR(conn->WriteAll(bytes));
//
// TLS: TLS 1.2 or later; the server's chain must verify against ca_file (the system trust
// store when empty) and the certificate must carry `server_name` (default: host) as a DNS
// subjectAltName, or as an IP subjectAltName when it is an address. SNI is sent for names.
// Errors: UNAVAILABLE (resolve, connect, reset, closed), DEADLINE_EXCEEDED (timeout),
// FAILED_PRECONDITION (TLS setup: unreadable CA or client key), UNAUTHENTICATED (the server's
// certificate did not verify), each with the host:port prepended.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace interlock::net {

struct BlockingClientOptions {
  std::string host;  // name or address
  uint16_t port = 0;
  bool tls = false;
  std::string ca_file;           // PEM; empty: the system trust store
  std::string server_name;       // empty: host
  std::string client_cert_file;  // PEM, optional (with client_key_file)
  std::string client_key_file;
  absl::Duration timeout = absl::Seconds(10);
};

class BlockingStream {
 public:
  static absl::StatusOr<std::unique_ptr<BlockingStream>> Connect(
      const BlockingClientOptions& options);
  ~BlockingStream();
  BlockingStream(const BlockingStream&) = delete;
  BlockingStream& operator=(const BlockingStream&) = delete;

  // Writes every byte or fails; after a failure the stream is unusable.
  absl::Status WriteAll(absl::string_view data);
  // Reads at most `n` bytes into `buf`; 0 means the peer closed.
  absl::StatusOr<size_t> Read(char* buf, size_t n);
  // Without waiting: true when the peer has closed or reset the connection (a write would
  // go nowhere). Data the peer sent (TLS session tickets) does not count as closed.
  bool PeerClosed();

  const std::string& peer() const { return peer_; }

 private:
  BlockingStream(UniqueFd fd, std::string peer) : fd_(std::move(fd)), peer_(std::move(peer)) {}
  absl::Status StartTls(const BlockingClientOptions& options);

  UniqueFd fd_;
  std::string peer_;  // "host:port" for messages
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

// A UDP socket connected to one receiver: each Send is one datagram.
class DatagramClient {
 public:
  static absl::StatusOr<std::unique_ptr<DatagramClient>> Connect(const std::string& host,
                                                                 uint16_t port);
  // UNAVAILABLE when the kernel refuses it (ICMP port unreachable reported for an earlier
  // datagram, no route); a datagram accepted here may still be lost on the way.
  absl::Status Send(absl::string_view datagram);

 private:
  DatagramClient(UniqueFd fd, std::string peer) : fd_(std::move(fd)), peer_(std::move(peer)) {}
  UniqueFd fd_;
  std::string peer_;
};

}  // namespace interlock::net
