// JWT (HS256) authentication for the HTTP API: permissions and roles, a verifier that the server
// runs on every request, a signer that `bmos-task token` uses to mint tokens, and the loading of
// the shared secret.
//
// A token is the compact JWS form `base64url(header).base64url(payload).base64url(signature)`
// with header {"alg":"HS256","typ":"JWT"} and signature HMAC-SHA256(secret, "<header>.<payload>").
// The payload carries `exp` (required), `nbf` and `iat` (optional, NumericDate seconds), `sub`
// (optional) and a `role` ("admin", "operator", "viewer"), a `permissions` list of permission
// names ("TASK_CREATE", ...), or both (the token then grants the union).
//
// Thread-safety: Permission/Role helpers are pure functions. A JwtVerifier is immutable after
// Create(): Verify may be called from any number of threads at once. SignJwt and the secret
// functions are safe to call from any thread (ResolveSecret reads the environment, so it must not
// race with setenv).
#ifndef BMOS_API_JWT_H_
#define BMOS_API_JWT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace bmos::api {

using storage::Result;
using storage::Status;

// One right over tasks. The values are bit flags so that a set of them fits a Permissions mask.
enum class Permission : uint32_t {
  kTaskCreate = 1u << 0,   // enqueue tasks, create scheduled jobs
  kTaskRead = 1u << 1,     // get, list and stats
  kTaskUpdate = 1u << 2,   // pause and resume scheduled jobs
  kTaskDelete = 1u << 3,   // cancel tasks, delete scheduled jobs
  kTaskExecute = 1u << 4,  // run a scheduled job now
};

// Every permission, in bit order.
inline constexpr std::array<Permission, 5> kAllPermissions = {
    Permission::kTaskCreate, Permission::kTaskRead, Permission::kTaskUpdate,
    Permission::kTaskDelete, Permission::kTaskExecute};

// "TASK_CREATE", "TASK_READ", "TASK_UPDATE", "TASK_DELETE", "TASK_EXECUTE".
std::string_view ToString(Permission permission);
// Accepts exactly the names above (upper case); nullopt otherwise.
std::optional<Permission> ParsePermission(std::string_view name);

// A set of permissions (a bit mask over Permission). A value type; the empty set grants nothing.
class Permissions {
 public:
  constexpr Permissions() = default;
  constexpr Permissions(Permission p) : bits_(static_cast<uint32_t>(p)) {}  // NOLINT: implicit
  // The set whose mask is `bits`; bits that name no permission are dropped.
  static constexpr Permissions FromBits(uint32_t bits) {
    Permissions p;
    p.bits_ = bits & kAllBits;
    return p;
  }
  static constexpr Permissions All() { return FromBits(kAllBits); }

  constexpr uint32_t bits() const { return bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool Has(Permission p) const { return (bits_ & static_cast<uint32_t>(p)) != 0; }
  // True when every permission of `other` is in this set (true for an empty `other`).
  constexpr bool HasAll(Permissions other) const { return (bits_ & other.bits_) == other.bits_; }
  constexpr Permissions& Add(Permissions other) {
    bits_ |= other.bits_;
    return *this;
  }
  constexpr Permissions& operator|=(Permissions other) { return Add(other); }
  friend constexpr Permissions operator|(Permissions a, Permissions b) { return a.Add(b); }
  friend constexpr bool operator==(Permissions a, Permissions b) = default;

 private:
  static constexpr uint32_t kAllBits = (1u << kAllPermissions.size()) - 1;
  uint32_t bits_ = 0;
};

constexpr Permissions operator|(Permission a, Permission b) {
  return Permissions(a) | Permissions(b);
}

// The names of the permissions in `p`, in bit order, joined by ",": "TASK_CREATE,TASK_READ".
// Empty for the empty set.
std::string ToString(Permissions p);

// A named set of permissions.
enum class Role : uint8_t {
  kAdmin,     // all five permissions
  kOperator,  // TASK_CREATE, TASK_READ, TASK_UPDATE, TASK_EXECUTE (everything but delete)
  kViewer,    // TASK_READ
};

// "admin", "operator", "viewer".
std::string_view ToString(Role role);
// Accepts exactly the names above (lower case); nullopt otherwise.
std::optional<Role> ParseRole(std::string_view name);
// The permissions the role grants (see Role).
Permissions RolePermissions(Role role);

// What a verified token says, or what SignJwt should put in a token.
struct Claims {
  std::string subject{};  // `sub`; empty when the token has none
  std::string role{};     // `role`; empty when the token has none
  // Verify: the permissions the token grants (the role's, plus any `permissions` claim).
  // SignJwt: see there.
  Permissions permissions{};
  int64_t exp = 0;  // expiry, Unix seconds (a token is refused from `exp` on)
  int64_t nbf = 0;  // not-before, Unix seconds; 0: none
  int64_t iat = 0;  // issued-at, Unix seconds; 0: none
};

// Tokens longer than this are refused before any decoding, which bounds the work per request.
inline constexpr size_t kMaxTokenBytes = 8 * 1024;

struct JwtVerifierOptions {
  // Clock skew tolerated on both time checks: a token is expired when now >= exp + leeway and
  // not yet valid when now < nbf - leeway. A larger leeway tolerates skew between the host that
  // minted the token and this one, at the price of honouring tokens that long after expiry.
  // Default: 0 (the minting CLI and the server normally share a clock).
  int64_t leeway_seconds = 0;
  // Keep a small per-thread cache (up to 256 tokens per thread, tokens up to 2 KiB) from the
  // exact token text to its verified claims, so that a keep-alive client that sends the same
  // token on every request costs one hash lookup, one string compare and the time checks. A miss
  // (including any token that differs in one byte) runs the full verification. Costs up to
  // ~600 KiB of memory per thread that verifies. Default: true.
  bool cache = true;
};

// Checks HS256 tokens against one secret.
class JwtVerifier {
 public:
  // InvalidArgument for an empty secret or a negative leeway; Internal if OpenSSL cannot provide
  // SHA-256. The verifier copies what it needs from `secret`.
  static Result<std::unique_ptr<JwtVerifier>> Create(std::string_view secret,
                                                     JwtVerifierOptions options = {});

  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;
  ~JwtVerifier();

  // The claims of `token` (the text after "Bearer "), if it is a well-formed HS256 token signed
  // with this verifier's secret, valid at `now_unix_seconds`, and granting at least one
  // permission. The checks run in this order, and the first that fails decides the message:
  //   size <= kMaxTokenBytes; exactly three dot-separated parts, header and payload non-empty;
  //   the header is canonical unpadded base64url (no '=', no stray low bits) of a JSON object
  //   whose `alg` is exactly "HS256", whose `typ` (if any) is "JWT" and which has no `crit`;
  //   the signature is non-empty, canonical base64url of 32 bytes, and equals the HMAC
  //   (constant-time compare); only then is the payload decoded: a JSON object with a numeric
  //   `exp` and no repeated claim; `role` and `permissions` name only known roles and
  //   permissions and grant something; last, the time checks.
  // With the cache on, a token byte-identical to one this verifier accepted on this thread skips
  // to the time checks, which run on every call.
  // Every refusal is InvalidArgument (Internal only if OpenSSL itself fails) with a short message
  // ("token expired", "invalid signature", "unsupported alg 'none'", ...): the HTTP layer answers
  // 401 for any non-OK result. (Status has no Unauthenticated code; InvalidArgument here does not
  // mean 422.)
  Result<Claims> Verify(std::string_view token, int64_t now_unix_seconds) const;

 private:
  struct Hmac;
  JwtVerifier(std::unique_ptr<Hmac> hmac, JwtVerifierOptions options, uint64_t id);
  Result<Claims> VerifyUncached(std::string_view token, int64_t now) const;
  Status CheckTimes(const Claims& claims, int64_t now) const;

  std::unique_ptr<Hmac> hmac_;  // the keyed SHA-256 states; read-only after Create
  JwtVerifierOptions options_;
  uint64_t id_;  // unique per verifier ever created in this process: keys the per-thread cache
};

// Mints a token signed with `secret` (REQUIRES: non-empty). The header is
// {"alg":"HS256","typ":"JWT"}; the payload has `sub` (if non-empty), `role` (if non-empty),
// `permissions` (the names in `claims.permissions`, written only when the role is empty, unknown,
// or grants less than `claims.permissions`), `iat` (if non-zero), `nbf` (if non-zero) and `exp`.
// Nothing is validated here: Verify is the judge (a token with an unknown role is minted and
// then refused). Returns the token text.
std::string SignJwt(std::string_view secret, const Claims& claims);

// Mints `base64url(header_json).base64url(payload_json).base64url(HMAC-SHA256)` from the given
// texts as they are, for tools and tests that need a token SignJwt would not write.
std::string SignJwtParts(std::string_view secret, std::string_view header_json,
                         std::string_view payload_json);

// Unpadded base64url (RFC 4648 section 5) of `bytes`.
std::string Base64UrlEncode(std::string_view bytes);
// Decodes unpadded, canonical base64url; nullopt for '=', any other character outside the
// alphabet, a length of 1 mod 4, or non-zero unused low bits in the last character.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Secrets shorter than this (in bytes) are refused wherever they come from.
inline constexpr size_t kMinSecretBytes = 16;

// The secret stored in `<data_dir>/jwt.secret`, creating it on first use:
//   - The data dir is created if missing (each directory we create gets mode 0700).
//   - A new secret is 32 bytes from RAND_bytes written as 64 hex characters; the file is written
//     under a temporary name with mode 0600, synced, and linked into place, so two processes
//     that race both end up with the one secret that won (the loser reads it back) and nobody
//     ever reads a half-written file.
//   - An existing file is refused, like ssh refuses a private key, when it grants any permission
//     to group or others (FailedPrecondition naming the path and the chmod to run), or when it is
//     not a regular file (FailedPrecondition).
// The secret is the file's text without surrounding whitespace. InvalidArgument when that is
// shorter than kMinSecretBytes or for an empty `data_dir`; IOError when a directory or the file
// cannot be created or read.
Result<std::string> LoadOrCreateSecret(const std::string& data_dir);

// The secret the server and the CLI use: the environment variable BMOS_JWT_SECRET when it is set
// and non-empty (InvalidArgument when shorter than kMinSecretBytes), else
// LoadOrCreateSecret(data_dir).
Result<std::string> ResolveSecret(const std::string& data_dir);

}  // namespace bmos::api

#endif  // BMOS_API_JWT_H_
