// WebhookNotifier: delivers JSON notifications (approval requests) to one approvers'
// webhook URL with libcurl, on its own worker thread, so interlockd's single-threaded
// event loop never waits on the network.
//
// Each Enqueue()d body is POSTed with `Content-Type: application/json`,
// `Idempotency-Key: <key>` (the same on every retry, so the receiver can drop repeats),
// `User-Agent: interlockd`, the optional extra header (e.g. an Authorization bearer
// read from a secret) and the Standard Webhooks (https://www.standardwebhooks.com/, v1)
// message id, the same on every retry:
//   webhook-id: msg_<key>
// With a signing key, every attempt also carries
//   webhook-timestamp: <unix seconds of this attempt>
//   webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<timestamp>.<body>")>
// (Standard Webhooks' symmetric signature, checked by its libraries in every language) and,
// deprecated and kept for one release for receivers written against it,
//   X-Interlock-Timestamp: <the same timestamp>
//   X-Interlock-Signature: v1=<hex HMAC-SHA256(key, "<timestamp>.<body>")>
// so the receiver can check that interlockd sent the body, unchanged, recently (reject
// timestamps older than a few minutes to stop replays). Outcome per attempt:
//   2xx                              delivered;
//   408, 429, 5xx, transport errors  retried after base * 2^(n-1), capped at backoff_max
//                                    (a longer Retry-After is honoured up to the cap);
//   any other status (4xx, 3xx)      permanent failure: not retried. Redirects are
//                                    never followed; only http:// and https:// are spoken.
// After max_attempts the notification is given up. Every enqueued notification gets
// exactly one WebhookResult through `on_result` — delivered, failed, or dropped at
// shutdown — and that callback runs ON THE WORKER THREAD: it must be quick, must not call
// Shutdown() or destroy the notifier, and must hand anything for the event loop over to it
// (e.g. through the loop's wakeup queue). It may call Enqueue().
//
// Neither the URL (it may carry a token) nor the extra header is ever logged or put in an
// error message. Backoffs are real waits on a condition variable (they are not
// deadlines of the proxy, so no Clock is injected); shutdown interrupts them and aborts an
// in-flight transfer at once.
//
//   WebhookOptions opts{.url = "https://approvals.example.com/hook",
//                       .extra_header = "Authorization: Bearer " + token,
//                       .on_result = [&loop](const WebhookResult& r) { loop.Post(r); }};
//   INTERLOCK_ASSIGN_OR_RETURN(auto notifier, WebhookNotifier::Create(std::move(opts)));
//   INTERLOCK_RETURN_IF_ERROR(notifier->Enqueue(json_body, request.id()));
//   ...
//   notifier->Shutdown(absl::Seconds(2));  // at exit: try to drain, then stop
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace interlock::approval {

// What became of one enqueued notification.
struct WebhookResult {
  std::string idempotency_key;
  // HTTP attempts made; 0 when it was dropped at shutdown before the first one.
  int attempts = 0;
  // Status of the last response; 0 when the last attempt got none (transport error).
  int http_status = 0;
  bool ok = false;
  // Why it failed ("" when ok): the last attempt's HTTP status or transport error.
  std::string error;
};

struct WebhookOptions {
  // http:// or https:// only.
  std::string url;
  // Limit for one attempt (connect + send + response).
  absl::Duration attempt_timeout = absl::Seconds(5);
  // Attempts per notification, first one included (>= 1).
  int max_attempts = 5;
  // Wait before retry n is backoff_base * 2^(n-1), at most backoff_max.
  absl::Duration backoff_base = absl::Seconds(1);
  absl::Duration backoff_max = absl::Seconds(30);
  // PEM CA bundle for https; "" = the system store.
  std::string ca_file;
  // One extra request header, "Name: value" (e.g. "Authorization: Bearer …"); "" = none.
  // Treated as a secret: never logged, never in errors.
  std::string extra_header;
  // HMAC-SHA256 key for webhook-signature (and X-Interlock-Signature): either raw bytes
  // or a Standard Webhooks secret "whsec_<base64>", whose decoded bytes are the key (see
  // ParseSigningKey). At least kMinSigningKeyBytes key bytes; "" = unsigned.
  // A secret: never logged, never in errors.
  std::string signing_key;
  // Notifications waiting (not counting the one in flight); Enqueue refuses beyond it.
  size_t max_queue = 1000;
  // HTTP proxy: unset = libcurl's environment variables (https_proxy, no_proxy, ...);
  // "" = never use a proxy; otherwise the proxy URL.
  std::optional<std::string> proxy;
  // Called once per notification, ON THE WORKER THREAD (see above). May be empty.
  std::function<void(const WebhookResult&)> on_result;
};

// "v1=" + lower-case hex HMAC-SHA256(key, timestamp + "." + body): the X-Interlock-Signature
// of a POST whose X-Interlock-Timestamp is `timestamp`. Receivers compute the same and
// compare in constant time.
std::string WebhookSignature(absl::string_view key, absl::string_view timestamp, absl::string_view body);

// Standard Webhooks v1 symmetric signature: "v1," + base64 HMAC-SHA256(key,
// msg_id + "." + timestamp + "." + body), the webhook-signature of a POST with those
// webhook-id and webhook-timestamp headers. `key` is the decoded key (ParseSigningKey).
std::string StandardWebhookSignature(absl::string_view key, absl::string_view msg_id, absl::string_view timestamp,
                                     absl::string_view body);

// What a receiver does with a webhook-signature header (space-separated "v<n>,<base64>"
// entries): true when one v1 entry matches, compared in constant time. Does not check the
// timestamp's age; that is the receiver's policy.
bool VerifyStandardWebhookSignature(absl::string_view key, absl::string_view msg_id, absl::string_view timestamp,
                                    absl::string_view body, absl::string_view signature_header);

// The HMAC key of a configured signing secret: "whsec_<base64>" (Standard Webhooks'
// format) is decoded; anything else is the key itself, byte for byte. INVALID_ARGUMENT
// when the whsec_ part is not base64; the error never quotes the secret.
absl::StatusOr<std::string> ParseSigningKey(absl::string_view configured);

// The webhook-id header of a notification enqueued with `idempotency_key`.
std::string WebhookMessageId(absl::string_view idempotency_key);

class WebhookNotifier {
 public:
  // Validates the options and starts the worker thread. INVALID_ARGUMENT for a URL that
  // does not parse or is not http(s), a malformed extra header or non-positive limits;
  // the errno mapping (NOT_FOUND, PERMISSION_DENIED) for an unreadable ca_file.
  static absl::StatusOr<std::unique_ptr<WebhookNotifier>> Create(WebhookOptions options);

  // Stops at once (Shutdown with no grace): an in-flight transfer is aborted, backoffs
  // are cut short, and everything undelivered is reported as failed.
  ~WebhookNotifier();
  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Queues `body` for delivery; never blocks on the network. Thread-safe.
  // INVALID_ARGUMENT when the key is empty, longer than kMaxKeyLength or not visible
  // ASCII; RESOURCE_EXHAUSTED when max_queue notifications are waiting;
  // FAILED_PRECONDITION after Shutdown().
  absl::Status Enqueue(std::string body, std::string idempotency_key);

  // Refuses new notifications, waits up to `grace` for the queue to drain (retries and
  // their backoffs included), then stops as the destructor does. Returns once the worker
  // thread has exited. Call it from the owner's thread, never from on_result; calling it
  // again does nothing.
  void Shutdown(absl::Duration grace);

  // Notifications waiting (not counting one in flight).
  size_t queued() const;

  static constexpr size_t kMaxKeyLength = 255;
  static constexpr size_t kMinSigningKeyBytes = 16;

 private:
  struct Item {
    std::string body;
    std::string key;
  };
  struct Attempt;
  struct Curl;  // libcurl handles; keeps curl.h out of this header

  WebhookNotifier(WebhookOptions options, std::unique_ptr<Curl> curl);
  void Run();
  WebhookResult Deliver(const Item& item);
  Attempt Post(const Item& item);
  // Waits `d` unless stopped first; false when stopped.
  bool SleepUnlessStopped(absl::Duration d);
  void Report(const WebhookResult& result);

  const WebhookOptions options_;
  std::unique_ptr<Curl> curl_;  // used by the worker only (curl_multi_wakeup excepted)

  mutable std::mutex mu_;
  std::condition_variable cv_;  // queue_, draining_, stop_, worker_done_ changed
  std::deque<Item> queue_;
  bool draining_ = false;          // Shutdown() called: no new items
  bool worker_done_ = false;       // Run() finished
  std::atomic<bool> stop_{false};  // abandon now: abort transfers, skip backoffs
  std::thread worker_;
};

}  // namespace interlock::approval
