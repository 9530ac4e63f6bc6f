#include "userspace/approval/webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"

namespace interlock::approval {
namespace {

constexpr absl::string_view kPrefix = "webhook: ";
// How long curl_multi_poll sleeps at most between checks of stop_; curl_multi_wakeup
// normally cuts it short, this only bounds a missed wakeup.
constexpr int kPollMs = 200;

// curl_global_init is not reentrant: once per process, whoever gets here first.
absl::Status GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) {
    return absl::InternalError(absl::StrCat(kPrefix, "curl_global_init: ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

// The URL may carry a token (in its path or query), so errors never quote it.
absl::Status ValidateUrl(const std::string& url) {
  struct UrlFree {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
  };
  std::unique_ptr<CURLU, UrlFree> u(curl_url());
  if (!u) return absl::ResourceExhaustedError(absl::StrCat(kPrefix, "curl_url: out of memory"));
  CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "url does not parse: ", curl_url_strerror(rc)));
  }
  char* scheme = nullptr;
  rc = curl_url_get(u.get(), CURLUPART_SCHEME, &scheme, 0);
  std::string s = rc == CURLUE_OK && scheme != nullptr ? scheme : "";
  curl_free(scheme);
  if (s != "http" && s != "https") {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "url: scheme must be http or https"));
  }
  char* host = nullptr;
  rc = curl_url_get(u.get(), CURLUPART_HOST, &host, 0);
  bool has_host = rc == CURLUE_OK && host != nullptr && host[0] != '\0';
  curl_free(host);
  if (!has_host) return absl::InvalidArgumentError(absl::StrCat(kPrefix, "url has no host"));
  return absl::OkStatus();
}

// RFC 9110 field-name token characters.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// "Name: value" with a token name and no control characters (no header injection).
// The value is a secret: errors do not quote it.
absl::Status ValidateExtraHeader(absl::string_view header) {
  size_t colon = header.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "extra header: want \"Name: value\""));
  }
  for (char c : header.substr(0, colon)) {
    if (!IsTokenChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(kPrefix, "extra header: bad name"));
    }
  }
  for (char c : header.substr(colon + 1)) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(kPrefix, "extra header: control character in value"));
    }
  }
  return absl::OkStatus();
}

enum class Verdict { kDelivered, kRetry, kPermanent };

Verdict Classify(long http_status) {
  if (http_status >= 200 && http_status < 300) return Verdict::kDelivered;
  if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status < 600)) {
    return Verdict::kRetry;
  }
  return Verdict::kPermanent;
}

// base * 2^(attempt-1), at most `cap`; no overflow for any attempt count.
absl::Duration Backoff(absl::Duration base, absl::Duration cap, int attempt) {
  absl::Duration d = base;
  for (int i = 1; i < attempt && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

absl::Status Append(Slist& list, const std::string& line) {
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  if (next == nullptr) return absl::ResourceExhaustedError(absl::StrCat(kPrefix, "out of memory"));
  list.release();
  list.reset(next);
  return absl::OkStatus();
}

size_t DiscardBody(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

// Called by libcurl during a transfer; non-zero aborts it (CURLE_ABORTED_BY_CALLBACK).
int AbortOnStop(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(stop)->load() ? 1 : 0;
}

}  // namespace

// The worker's libcurl handles: one easy handle reused for every attempt (its options
// are set once in Create), driven by a multi handle so that Shutdown() can wake a
// transfer blocked in curl_multi_poll from another thread (curl_multi_wakeup).
struct WebhookNotifier::Curl {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  ~Curl() {
    if (multi != nullptr) curl_multi_cleanup(multi);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

// The outcome of one POST.
struct WebhookNotifier::Attempt {
  int http_status = 0;  // 0: no response
  std::string error;    // transport error; "" when a response came back
  absl::Duration retry_after;
  bool aborted = false;  // stopped mid-transfer
};

namespace {

std::string HmacSha256(absl::string_view key, absl::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), md, &len) == nullptr) {
    std::abort();  // HMAC-SHA256 fails only on allocation failure
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

constexpr absl::string_view kWhsecPrefix = "whsec_";

}  // namespace

std::string WebhookSignature(absl::string_view key, absl::string_view timestamp, absl::string_view body) {
  return absl::StrCat("v1=", HexEncode(HmacSha256(key, absl::StrCat(timestamp, ".", body))));
}

std::string StandardWebhookSignature(absl::string_view key, absl::string_view msg_id, absl::string_view timestamp,
                                     absl::string_view body) {
  return absl::StrCat("v1,", absl::Base64Escape(HmacSha256(key, absl::StrCat(msg_id, ".", timestamp, ".", body))));
}

bool VerifyStandardWebhookSignature(absl::string_view key, absl::string_view msg_id, absl::string_view timestamp,
                                    absl::string_view body, absl::string_view signature_header) {
  const std::string want = StandardWebhookSignature(key, msg_id, timestamp, body);
  bool ok = false;
  for (absl::string_view entry : absl::StrSplit(signature_header, ' ', absl::SkipEmpty())) {
    if (entry.size() == want.size() && CRYPTO_memcmp(entry.data(), want.data(), want.size()) == 0) ok = true;
  }
  return ok;
}

absl::StatusOr<std::string> ParseSigningKey(absl::string_view configured) {
  if (!absl::StartsWith(configured, kWhsecPrefix)) return std::string(configured);
  absl::string_view b64 = configured.substr(kWhsecPrefix.size());
  std::string key;
  // Base64Unescape also takes unpadded input; '-' and '_' (URL-safe) it refuses.
  if (b64.empty() || !absl::Base64Unescape(b64, &key) || key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "signing key: whsec_ secret is not valid base64"));
  }
  return key;
}

std::string WebhookMessageId(absl::string_view idempotency_key) { return absl::StrCat("msg_", idempotency_key); }

absl::StatusOr<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(WebhookOptions options) {
  INTERLOCK_RETURN_IF_ERROR(ValidateUrl(options.url));
  if (!options.extra_header.empty()) {
    INTERLOCK_RETURN_IF_ERROR(ValidateExtraHeader(options.extra_header));
  }
  if (!options.signing_key.empty()) {
    INTERLOCK_ASSIGN_OR_RETURN(options.signing_key, ParseSigningKey(options.signing_key));
  }
  if (!options.signing_key.empty() && options.signing_key.size() < kMinSigningKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "signing key: want at least ", kMinSigningKeyBytes, " bytes"));
  }
  if (options.attempt_timeout <= absl::ZeroDuration() ||
      options.attempt_timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "attempt timeout must be > 0"));
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "max attempts must be >= 1"));
  }
  if (options.backoff_base < absl::ZeroDuration() || options.backoff_max < options.backoff_base ||
      options.backoff_max == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "backoff: want 0 <= base <= max < infinity"));
  }
  if (options.max_queue < 1) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "max queue must be >= 1"));
  }
  if (!options.ca_file.empty() && ::access(options.ca_file.c_str(), R_OK) != 0) {
    return ErrnoStatus(errno, absl::StrCat(kPrefix, "ca file ", options.ca_file));
  }
  INTERLOCK_RETURN_IF_ERROR(GlobalInit());

  auto curl = std::make_unique<Curl>();
  curl->easy = curl_easy_init();
  curl->multi = curl_multi_init();
  if (curl->easy == nullptr || curl->multi == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(kPrefix, "cannot create curl handles"));
  }
  // The notifier's address is only known after construction; the stop flag it points
  // the progress callback at is set below.
  auto notifier =
      std::unique_ptr<WebhookNotifier>(new WebhookNotifier(std::move(options), std::move(curl)));
  const WebhookOptions& o = notifier->options_;
  CURL* easy = notifier->curl_->easy;
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode r) {
    if (rc == CURLE_OK) rc = r;
  };
  set(curl_easy_setopt(easy, CURLOPT_URL, o.url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85.0
  set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
#else
  set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS}));
  set(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS, long{CURLPROTO_HTTP | CURLPROTO_HTTPS}));
#endif
  set(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(easy, CURLOPT_POST, 1L));
  set(curl_easy_setopt(easy, CURLOPT_USERAGENT, "interlockd"));
  set(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));  // worker thread: no SIGALRM
  set(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(o.attempt_timeout))));
  set(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(o.attempt_timeout))));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L));
  if (!o.ca_file.empty()) set(curl_easy_setopt(easy, CURLOPT_CAINFO, o.ca_file.c_str()));
  if (o.proxy.has_value()) set(curl_easy_setopt(easy, CURLOPT_PROXY, o.proxy->c_str()));
  set(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &DiscardBody));
  set(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, notifier->curl_->error));
  set(curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L));
  set(curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &AbortOnStop));
  set(curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &notifier->stop_));
  if (rc != CURLE_OK) {
    return absl::InternalError(absl::StrCat(kPrefix, "curl setup: ", curl_easy_strerror(rc)));
  }
  notifier->worker_ = std::thread(&WebhookNotifier::Run, notifier.get());
  return notifier;
}

WebhookNotifier::WebhookNotifier(WebhookOptions options, std::unique_ptr<Curl> curl)
    : options_(std::move(options)), curl_(std::move(curl)) {}

WebhookNotifier::~WebhookNotifier() { Shutdown(absl::ZeroDuration()); }

absl::Status WebhookNotifier::Enqueue(std::string body, std::string idempotency_key) {
  if (idempotency_key.empty() || idempotency_key.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "idempotency key must be 1..", kMaxKeyLength, " characters"));
  }
  for (char c : idempotency_key) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(kPrefix, "idempotency key must be visible ASCII"));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || stop_) {
      return absl::FailedPreconditionError(absl::StrCat(kPrefix, "shut down"));
    }
    if (queue_.size() >= options_.max_queue) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kPrefix, "queue full (", options_.max_queue, " notifications waiting)"));
    }
    queue_.push_back(Item{std::move(body), std::move(idempotency_key)});
  }
  cv_.notify_all();
  return absl::OkStatus();
}

void WebhookNotifier::Shutdown(absl::Duration grace) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    draining_ = true;
    cv_.notify_all();
    auto done = [this] { return worker_done_; };
    if (grace == absl::InfiniteDuration()) {
      cv_.wait(lock, done);
    } else if (grace > absl::ZeroDuration()) {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(grace), done);
    }
    stop_ = true;
  }
  cv_.notify_all();
  curl_multi_wakeup(curl_->multi);  // documented as callable from any thread
  if (worker_.joinable()) worker_.join();
}

size_t WebhookNotifier::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void WebhookNotifier::Run() {
  while (true) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || draining_ || !queue_.empty(); });
      if (stop_ || queue_.empty()) break;  // stopped, or draining and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    Report(Deliver(item));
  }
  std::deque<Item> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
  }
  for (const Item& item : left) {
    Report(WebhookResult{.idempotency_key = item.key, .error = "shut down before delivery"});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker_done_ = true;
  }
  cv_.notify_all();
}

WebhookResult WebhookNotifier::Deliver(const Item& item) {
  WebhookResult result{.idempotency_key = item.key};
  for (int attempt = 1;; ++attempt) {
    result.attempts = attempt;
    Attempt a = Post(item);
    result.http_status = a.http_status;
    if (a.aborted) {
      result.error = "shut down during delivery";
      return result;
    }
    Verdict verdict = a.http_status == 0 ? Verdict::kRetry : Classify(a.http_status);
    if (verdict == Verdict::kDelivered) {
      result.ok = true;
      result.error.clear();
      return result;
    }
    result.error = a.http_status != 0 ? absl::StrCat("HTTP ", a.http_status) : a.error;
    if (verdict == Verdict::kPermanent) return result;
    if (attempt >= options_.max_attempts) {
      result.error = absl::StrCat("gave up after ", attempt, " attempts: ", result.error);
      return result;
    }
    absl::Duration wait = Backoff(options_.backoff_base, options_.backoff_max, attempt);
    wait = std::max(wait, std::min(a.retry_after, options_.backoff_max));
    if (!SleepUnlessStopped(wait)) {
      absl::StrAppend(&result.error, " (shut down before retry)");
      return result;
    }
  }
}

WebhookNotifier::Attempt WebhookNotifier::Post(const Item& item) {
  Attempt out;
  CURL* easy = curl_->easy;
  CURLM* multi = curl_->multi;
  Slist headers;
  // "Expect:" stops libcurl's 100-continue round trip for bodies over 1 KiB.
  absl::Status st = Append(headers, "Content-Type: application/json");
  if (st.ok()) st = Append(headers, "Idempotency-Key: " + item.key);
  if (st.ok()) st = Append(headers, "Expect:");
  if (st.ok() && !options_.extra_header.empty()) st = Append(headers, options_.extra_header);
  const std::string msg_id = WebhookMessageId(item.key);
  if (st.ok()) st = Append(headers, "webhook-id: " + msg_id);
  if (st.ok() && !options_.signing_key.empty()) {
    // Signed per attempt: a retry carries its own, fresh timestamp (and the same id).
    std::string ts = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
    st = Append(headers, "webhook-timestamp: " + ts);
    if (st.ok()) {
      st = Append(headers,
                  "webhook-signature: " + StandardWebhookSignature(options_.signing_key, msg_id, ts, item.body));
    }
    // Deprecated (one release): the pre-Standard-Webhooks pair.
    if (st.ok()) st = Append(headers, "X-Interlock-Timestamp: " + ts);
    if (st.ok()) st = Append(headers, "X-Interlock-Signature: " + WebhookSignature(options_.signing_key, ts, item.body));
  }
  if (!st.ok()) {
    out.error = std::string(st.message());
    return out;
  }
  curl_->error[0] = '\0';
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, item.body.data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(item.body.size()));

  CURLcode code = CURLE_OK;
  bool done = false;
  CURLMcode mc = curl_multi_add_handle(multi, easy);
  while (mc == CURLM_OK && !done) {
    if (stop_) {
      out.aborted = true;
      break;
    }
    int running = 0;
    mc = curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        code = msg->data.result;
        done = true;
      }
    }
    if (mc == CURLM_OK && !done) mc = curl_multi_poll(multi, nullptr, 0, kPollMs, nullptr);
  }
  curl_multi_remove_handle(multi, easy);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, nullptr);

  if (out.aborted || code == CURLE_ABORTED_BY_CALLBACK) {
    out.aborted = true;
    return out;
  }
  if (mc != CURLM_OK) {
    out.error = absl::StrCat("curl: ", curl_multi_strerror(mc));
    return out;
  }
  if (code != CURLE_OK) {
    // The error buffer names host and port, never the path or query of the URL.
    out.error = curl_->error[0] != '\0' ? curl_->error : curl_easy_strerror(code);
    return out;
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  out.http_status = static_cast<int>(status);
  curl_off_t retry_after = 0;
  if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0) {
    out.retry_after = absl::Seconds(retry_after);
  }
  return out;
}

bool WebhookNotifier::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [this] { return stop_.load(); });
}

void WebhookNotifier::Report(const WebhookResult& result) {
  if (options_.on_result) options_.on_result(result);
}

}  // namespace interlock::approval
