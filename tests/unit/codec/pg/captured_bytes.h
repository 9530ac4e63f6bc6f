// Bytes captured from real sessions against PostgreSQL 15.18 (Debian 15.18-0+deb12u1) over
// loopback, through a logging relay: psql 15 with SCRAM-SHA-256 (sslmode=prefer, so it first
// asks for TLS and is refused with the single byte 'N'), pgbench -M extended, and psql running
// a failing query and a COPY TO STDOUT. Each constant is one read() as the relay saw it
// (its comment says the direction); salts, nonces and keys are those sessions'.
#pragma once

#include "absl/strings/string_view.h"

namespace interlock::codec::pg::captured {

// frontend
inline constexpr char kSslRequest[] = "\000\000\000\010\004\322\026/";
// backend
inline constexpr char kSslRefused[] = "N";
// frontend
inline constexpr char kStartupMessage[] =
    "\000\000\0007\000\003\000\000user\000alice\000database\000app\000application_name\000psql"
    "\000\000";
// backend
inline constexpr char kAuthenticationSasl[] =
    "R\000\000\000\027\000\000\000\012SCRAM-SHA-256\000\000";
// frontend
inline constexpr char kSaslInitialResponse[] =
    "p\000\000\0006SCRAM-SHA-256\000\000\000\000 n,,n=,r=3s7jV3HEggh925+OgIuoGviA";
// backend
inline constexpr char kSaslContinue[] =
    "R\000\000\000\134\000\000\000\013r=3s7jV3HEggh925+OgIuoGviAm8AYAZ8EuXkYg3LutQFsYeBS,s=9ukt"
    "czyEztQQjwu0KUi9rg==,i=4096";
// frontend
inline constexpr char kSaslResponse[] =
    "p\000\000\000lc=biws,r=3s7jV3HEggh925+OgIuoGviAm8AYAZ8EuXkYg3LutQFsYeBS,p=19VOI/hTtKGv0p2b"
    "glMNBxTh4A+nj1IMoKzhzs0Zf6g=";
// backend
inline constexpr char kLoginCompletion[] =
    "R\000\000\0006\000\000\000\014v=ixlOmvv2TnXAXMmV3erSuoza/aCwOVhIIssRk/RezAs=R\000\000\000"
    "\010\000\000\000\000S\000\000\000\032application_name\000psql\000S\000\000\000\031client_e"
    "ncoding\000UTF8\000S\000\000\000\027DateStyle\000ISO, MDY\000S\000\000\000&default_transac"
    "tion_read_only\000off\000S\000\000\000\027in_hot_standby\000off\000S\000\000\000\031intege"
    "r_datetimes\000on\000S\000\000\000\033IntervalStyle\000postgres\000S\000\000\000\025is_sup"
    "eruser\000off\000S\000\000\000\031server_encoding\000UTF8\000S\000\000\0002server_version"
    "\00015.18 (Debian 15.18-0+deb12u1)\000S\000\000\000 session_authorization\000alice\000S"
    "\000\000\000#standard_conforming_strings\000on\000S\000\000\000\025TimeZone\000Etc/UTC\000"
    "K\000\000\000\014\000\000\013\013\224HL\364Z\000\000\000\005I";
// frontend
inline constexpr char kQuerySelect1[] = "Q\000\000\000\015SELECT 1\000";
// backend
inline constexpr char kSelect1Result[] =
    "T\000\000\000!\000\001\077column\077\000\000\000\000\000\000\000\000\000\000\027\000\004"
    "\377\377\377\377\000\000D\000\000\000\013\000\001\000\000\000\0011C\000\000\000\015SELECT "
    "1\000Z\000\000\000\005I";
// frontend
inline constexpr char kTerminate[] = "X\000\000\000\004";
// frontend
inline constexpr char kExtendedQuery[] =
    "P\000\000\000'\000SELECT $1::int AS x, NULL AS n;\000\000\000B\000\000\000\023\000\000\000"
    "\000\000\001\000\000\000\0015\000\001\000\000D\000\000\000\006P\000E\000\000\000\011\000"
    "\000\000\000\000S\000\000\000\004";
// backend
inline constexpr char kExtendedResult[] =
    "1\000\000\000\0042\000\000\000\004T\000\000\000.\000\002x\000\000\000\000\000\000\000\000"
    "\000\000\027\000\004\377\377\377\377\000\000n\000\000\000\000\000\000\000\000\000\000\031"
    "\377\377\377\377\377\377\000\000D\000\000\000\017\000\002\000\000\000\0015\377\377\377\377"
    "C\000\000\000\015SELECT 1\000Z\000\000\000\005I";
// frontend
inline constexpr char kQueryDivByZero[] = "Q\000\000\000\017SELECT 1/0\000";
// backend
inline constexpr char kDivByZeroError[] =
    "E\000\000\000ASERROR\000VERROR\000C22012\000Mdivision by zero\000Fint.c\000L869\000Rint4di"
    "v\000\000";
// frontend
inline constexpr char kQueryCopyOut[] =
    "Q\000\000\000:COPY (SELECT g FROM generate_series(1,2) g) TO STDOUT\000";
// backend
inline constexpr char kCopyOutResult[] =
    "H\000\000\000\011\000\000\001\000\000d\000\000\000\0061\012d\000\000\000\0062\012c\000\000"
    "\000\004C\000\000\000\013COPY 2\000Z\000\000\000\005I";

// The bytes of a captured literal (they contain NULs, so no strlen).
template <size_t N>
constexpr absl::string_view Bytes(const char (&literal)[N]) {
  return absl::string_view(literal, N - 1);
}

}  // namespace interlock::codec::pg::captured
