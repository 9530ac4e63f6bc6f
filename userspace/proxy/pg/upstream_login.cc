#include "userspace/proxy/pg/upstream_login.h"

#include "absl/strings/str_cat.h"
#include "userspace/auth/md5.h"
#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/status_macros.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;

UpstreamLogin::UpstreamLogin(UpstreamLoginOptions options, std::optional<auth::Secret> password,
                             std::string tls_cb_hash, std::string client_nonce)
    : options_(std::move(options)),
      password_(std::move(password)),
      tls_cb_hash_(std::move(tls_cb_hash)),
      client_nonce_(std::move(client_nonce)) {}

UpstreamLogin::~UpstreamLogin() = default;

std::string UpstreamLogin::StartupMessage() const {
  std::vector<std::pair<std::string, std::string>> params = {{"user", options_.user},
                                                             {"database", options_.database}};
  for (const auto& p : options_.params) params.push_back(p);
  return cpg::EncodeStartupMessage(params);
}

absl::StatusOr<UpstreamLogin::Step> UpstreamLogin::OnMessage(char type, absl::string_view body) {
  namespace be = cpg::backend;
  Step step;
  switch (type) {
    case be::kErrorResponse: {
      auto e = cpg::ParseErrorResponse(body);
      if (!e.ok()) return Annotate(e.status(), "upstream login");
      return absl::PermissionDeniedError(absl::StrCat("upstream refused the login (", e->sqlstate(),
                                                      "): ", e->message()));
    }
    case be::kNoticeResponse:
    case be::kNegotiateProtocolVersion:
      // We ask for 3.0 without _pq_ options: nothing to adjust.
      return step;
    case be::kAuthentication:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("upstream login: unexpected ", cpg::MessageName(type, false), " before authentication"));
  }
  INTERLOCK_ASSIGN_OR_RETURN(cpg::Authentication a, cpg::ParseAuthentication(body));
  auto need_password = [&]() -> absl::Status {
    if (!password_.has_value()) {
      return absl::FailedPreconditionError(
          "upstream asks for a password and the resource has no password_ref configured");
    }
    // Defence in depth behind the config check: whoever answers at the address asks for
    // the password the same way the real server does.
    if (!options_.upstream_verified && !options_.allow_unverified) {
      return absl::FailedPreconditionError(
          "upstream_unverified: the server asks for the password but its identity is not verified "
          "(TLS with sslmode verify-ca or verify-full); the password is not sent "
          "(allow_unverified_upstream is false)");
    }
    return absl::OkStatus();
  };
  switch (a.code) {
    case cpg::AuthCode::kOk:
      if (scram_.has_value() && method_.rfind("SCRAM", 0) == 0 && !scram_done_) {
        // A server that skips SASLFinal never proved it knows the password.
        return absl::PermissionDeniedError("upstream login: SCRAM ended without the server's proof");
      }
      step.authenticated = true;
      return step;
    case cpg::AuthCode::kCleartextPassword:
      INTERLOCK_RETURN_IF_ERROR(need_password());
      method_ = "password";
      step.send = cpg::EncodePasswordMessage(password_->reveal());
      return step;
    case cpg::AuthCode::kMd5Password: {
      INTERLOCK_RETURN_IF_ERROR(need_password());
      method_ = "md5";
      auth::Md5Salt salt;
      for (size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<unsigned char>(a.md5_salt[i]);
      INTERLOCK_ASSIGN_OR_RETURN(std::string response,
                                 auth::Md5PasswordResponse(options_.user, password_->reveal(), salt));
      step.send = cpg::EncodePasswordMessage(response);
      return step;
    }
    case cpg::AuthCode::kSasl: {
      INTERLOCK_RETURN_IF_ERROR(need_password());
      std::optional<std::string> cb;
      if (!tls_cb_hash_.empty()) cb = tls_cb_hash_;
      INTERLOCK_ASSIGN_OR_RETURN(auth::ChannelBinding binding,
                                 auth::SelectMechanism(a.sasl_mechanisms, cb));
      INTERLOCK_ASSIGN_OR_RETURN(auth::ScramClient scram,
                                 auth::ScramClient::Create(password_->reveal(), binding, client_nonce_));
      scram_.emplace(std::move(scram));
      method_ = std::string(scram_->mechanism());
      step.send = cpg::EncodeSaslInitialResponse(scram_->mechanism(), scram_->ClientFirstMessage());
      return step;
    }
    case cpg::AuthCode::kSaslContinue: {
      if (!scram_.has_value()) return absl::InvalidArgumentError("upstream login: SASLContinue before SASL");
      INTERLOCK_ASSIGN_OR_RETURN(std::string final_message, scram_->HandleServerFirst(a.data));
      step.send = cpg::EncodeSaslResponse(final_message);
      return step;
    }
    case cpg::AuthCode::kSaslFinal:
      if (!scram_.has_value()) return absl::InvalidArgumentError("upstream login: SASLFinal before SASL");
      if (absl::Status st = scram_->HandleServerFinal(a.data); !st.ok()) {
        // The server could not prove it knows the password (or refused): not our server.
        return absl::PermissionDeniedError(absl::StrCat("upstream login: SCRAM server proof: ", st.message()));
      }
      scram_done_ = true;
      return step;
    default:
      return absl::UnimplementedError(absl::StrCat(
          "upstream login: authentication method ", static_cast<int>(a.code),
          " (GSS/SSPI/Kerberos) is not supported; use scram-sha-256, md5 or password"));
  }
}

}  // namespace interlock::proxy::pg
