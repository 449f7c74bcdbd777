#include "api/jwt.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "api/json_writer.h"

namespace bmos::api {
namespace {

constexpr size_t kDigestBytes = 32;    // SHA-256
constexpr size_t kBlockBytes = 64;     // SHA-256 block, the HMAC pad size
constexpr size_t kCacheEntries = 256;  // per thread; a power of two (indexed by hash & mask)
constexpr size_t kMaxCachedTokenBytes = 2048;
constexpr size_t kMaxSecretFileBytes = 4096;

// base64url of {"alg":"HS256","typ":"JWT"}, the header SignJwt writes: Verify skips decoding and
// parsing a header that is exactly this.
constexpr std::string_view kCanonicalHeaderB64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

constexpr char kB64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// 0..63 for the base64url alphabet, 0xFF for anything else ('=' included).
constexpr std::array<uint8_t, 256> MakeDecodeTable() {
  std::array<uint8_t, 256> t{};
  for (auto& v : t) v = 0xFF;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kB64Alphabet[i])] = static_cast<uint8_t>(i);
  return t;
}
constexpr std::array<uint8_t, 256> kDecodeTable = MakeDecodeTable();

// Decodes canonical unpadded base64url into `out` (resized to the decoded size plus `padding`
// zero bytes, which simdjson needs after the text it parses). False on any invalid input.
bool DecodeBase64Url(std::string_view in, std::string& out, size_t padding) {
  const size_t n = in.size();
  if (n % 4 == 1) return false;
  const size_t decoded = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
  out.resize(decoded + padding);
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  const auto* src = reinterpret_cast<const uint8_t*>(in.data());
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t a = kDecodeTable[src[i]], b = kDecodeTable[src[i + 1]],
                   c = kDecodeTable[src[i + 2]], d = kDecodeTable[src[i + 3]];
    if ((a | b | c | d) & 0x80) return false;
    const uint32_t v = a << 18 | b << 12 | c << 6 | d;
    *dst++ = static_cast<uint8_t>(v >> 16);
    *dst++ = static_cast<uint8_t>(v >> 8);
    *dst++ = static_cast<uint8_t>(v);
  }
  const size_t rest = n - i;
  if (rest >= 2) {
    const uint32_t a = kDecodeTable[src[i]], b = kDecodeTable[src[i + 1]];
    const uint32_t c = rest == 3 ? kDecodeTable[src[i + 2]] : 0;
    if ((a | b | c) & 0x80) return false;
    // Canonical form: the bits below the last whole byte must be zero, so that each byte string
    // has exactly one encoding (and a cached token cannot be re-spelled).
    if (rest == 2 && (b & 0x0F) != 0) return false;
    if (rest == 3 && (c & 0x03) != 0) return false;
    const uint32_t v = a << 18 | b << 12 | c << 6;
    *dst++ = static_cast<uint8_t>(v >> 16);
    if (rest == 3) *dst++ = static_cast<uint8_t>(v >> 8);
  }
  std::memset(dst, 0, padding);
  return true;
}

// A user-supplied value for an error message: at most 32 printable ASCII characters (others
// become '?'), so that the message stays short and valid UTF-8 whatever the token held.
std::string Quote(std::string_view v) {
  constexpr size_t kMax = 32;
  std::string out = "'";
  for (size_t i = 0; i < v.size() && i < kMax; ++i) {
    const char c = v[i];
    out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
  }
  if (v.size() > kMax) out.append("...");
  out.push_back('\'');
  return out;
}

Status Refuse(std::string message) { return Status::InvalidArgument(std::move(message)); }

// A NumericDate: an integer, or a finite number (floored) within int64.
bool ReadNumericDate(simdjson::dom::element e, int64_t& out) {
  switch (e.type()) {
    case simdjson::dom::element_type::INT64:
      out = e.get_int64().value_unsafe();
      return true;
    case simdjson::dom::element_type::DOUBLE: {
      const double d = std::floor(e.get_double().value_unsafe());
      // 2^63 is exact as a double; anything at or above it does not fit.
      if (!std::isfinite(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
        return false;
      }
      out = static_cast<int64_t>(d);
      return true;
    }
    default:
      return false;  // UINT64 (above int64), strings, booleans, ...
  }
}

simdjson::dom::parser& ThreadParser() {
  // One per thread, reused: its buffers grow to the largest document seen (tokens are capped at
  // kMaxTokenBytes) and are never freed until the thread ends.
  thread_local simdjson::dom::parser parser;
  return parser;
}

// The decoded header or payload, with simdjson's padding; one per thread, reused.
std::string& ThreadBuffer() {
  thread_local std::string buffer;
  return buffer;
}

Status CheckHeader(std::string_view header_b64) {
  if (header_b64 == kCanonicalHeaderB64) return Status::Ok();
  std::string& buf = ThreadBuffer();
  if (!DecodeBase64Url(header_b64, buf, simdjson::SIMDJSON_PADDING)) {
    return Refuse("malformed token: header is not base64url");
  }
  const size_t len = buf.size() - simdjson::SIMDJSON_PADDING;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (ThreadParser().parse(buf.data(), len, false).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return Refuse("malformed token: header is not a JSON object");
  }
  bool seen_alg = false, seen_typ = false;
  for (auto field : obj) {
    const std::string_view key = field.key;
    if (key == "alg" || key == "typ") {
      bool& seen = key == "alg" ? seen_alg : seen_typ;
      if (seen) return Refuse("malformed token: duplicate header field '" + std::string(key) + "'");
      seen = true;
      std::string_view v;
      if (field.value.get_string().get(v) != simdjson::SUCCESS) {
        return Refuse("malformed token: header field '" + std::string(key) + "' is not a string");
      }
      if (key == "alg" && v != "HS256") return Refuse("unsupported alg " + Quote(v));
      if (key == "typ" && v != "JWT") return Refuse("unsupported typ " + Quote(v));
    } else if (key == "crit") {
      // RFC 7515 4.1.11: extensions listed in crit must be understood; we understand none.
      return Refuse("unsupported header field 'crit'");
    }
  }
  if (!seen_alg) return Refuse("malformed token: header has no alg");
  return Status::Ok();
}

// Fills `claims` from the payload JSON (already in ThreadBuffer, `len` bytes).
Status ReadPayload(size_t len, Claims& claims) {
  std::string& buf = ThreadBuffer();
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (ThreadParser().parse(buf.data(), len, false).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return Refuse("malformed token: payload is not a JSON object");
  }
  enum : unsigned { kExp = 1, kNbf = 2, kIat = 4, kSub = 8, kRole = 16, kPerms = 32 };
  unsigned seen = 0;
  bool has_role = false, has_permissions = false;
  Permissions granted;
  for (auto field : obj) {
    const std::string_view key = field.key;
    unsigned bit = 0;
    if (key == "exp") {
      bit = kExp;
    } else if (key == "nbf") {
      bit = kNbf;
    } else if (key == "iat") {
      bit = kIat;
    } else if (key == "sub") {
      bit = kSub;
    } else if (key == "role") {
      bit = kRole;
    } else if (key == "permissions") {
      bit = kPerms;
    } else {
      continue;  // other registered or private claims are allowed and ignored
    }
    // A repeated claim could be read differently by another parser (first vs last wins).
    if (seen & bit) return Refuse("malformed token: duplicate claim '" + std::string(key) + "'");
    seen |= bit;
    switch (bit) {
      case kExp:
      case kNbf:
      case kIat: {
        int64_t& dst = bit == kExp ? claims.exp : bit == kNbf ? claims.nbf : claims.iat;
        if (!ReadNumericDate(field.value, dst)) {
          return Refuse("malformed token: " + std::string(key) + " is not a number");
        }
        break;
      }
      case kSub: {
        std::string_view v;
        if (field.value.get_string().get(v) != simdjson::SUCCESS) {
          return Refuse("malformed token: sub is not a string");
        }
        claims.subject.assign(v);
        break;
      }
      case kRole: {
        std::string_view v;
        if (field.value.get_string().get(v) != simdjson::SUCCESS) {
          return Refuse("malformed token: role is not a string");
        }
        const std::optional<Role> role = ParseRole(v);
        if (!role) return Refuse("unknown role " + Quote(v));
        claims.role.assign(v);
        granted |= RolePermissions(*role);
        has_role = true;
        break;
      }
      case kPerms: {
        simdjson::dom::array arr;
        if (field.value.get_array().get(arr) != simdjson::SUCCESS) {
          return Refuse("malformed token: permissions is not an array");
        }
        for (simdjson::dom::element e : arr) {
          std::string_view v;
          if (e.get_string().get(v) != simdjson::SUCCESS) {
            return Refuse("malformed token: permissions holds a non-string");
          }
          const std::optional<Permission> p = ParsePermission(v);
          if (!p) return Refuse("unknown permission " + Quote(v));
          granted |= *p;
        }
        has_permissions = true;
        break;
      }
    }
  }
  if (!(seen & kExp)) return Refuse("malformed token: missing exp");
  if (!has_role && !has_permissions) return Refuse("token has no role or permissions");
  if (granted.empty()) return Refuse("token grants no permissions");
  claims.permissions = granted;
  return Status::Ok();
}

// One cached verification: the exact token text and what it verified to, for one verifier.
struct CacheEntry {
  uint64_t verifier_id = 0;  // 0: empty (ids start at 1)
  std::string token{};
  Claims claims{};
};

struct TokenCache {
  std::array<CacheEntry, kCacheEntries> entries{};
};

TokenCache& ThreadCache() {
  thread_local TokenCache cache;
  return cache;
}

// Ids of verifiers; relaxed: only uniqueness matters, nothing is published through it.
std::atomic<uint64_t> next_verifier_id{1};

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

}  // namespace

// HMAC-SHA256 with the key's pad blocks absorbed once: computing a MAC copies the two keyed
// states instead of hashing the pads again. Plain EVP digests are used because OpenSSL 3 has
// deprecated HMAC_CTX and its one-shot HMAC() fetches the algorithm on every call (a global lock).
struct JwtVerifier::Hmac {
  EVP_MD* md = nullptr;
  MdCtxPtr inner;  // SHA-256 after absorbing key ^ 0x36..
  MdCtxPtr outer;  // SHA-256 after absorbing key ^ 0x5c..

  ~Hmac() { EVP_MD_free(md); }

  static std::unique_ptr<Hmac> Create(std::string_view secret) {
    auto h = std::make_unique<Hmac>();
    h->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    h->inner.reset(EVP_MD_CTX_new());
    h->outer.reset(EVP_MD_CTX_new());
    if (h->md == nullptr || !h->inner || !h->outer) return nullptr;
    uint8_t key[kBlockBytes] = {};
    if (secret.size() > kBlockBytes) {
      // RFC 2104: a key longer than the block is replaced by its hash.
      unsigned int len = 0;
      if (EVP_Digest(secret.data(), secret.size(), key, &len, h->md, nullptr) != 1) return nullptr;
    } else {
      std::memcpy(key, secret.data(), secret.size());
    }
    uint8_t ipad[kBlockBytes], opad[kBlockBytes];
    for (size_t i = 0; i < kBlockBytes; ++i) {
      ipad[i] = key[i] ^ 0x36;
      opad[i] = key[i] ^ 0x5c;
    }
    OPENSSL_cleanse(key, sizeof(key));
    const bool ok = EVP_DigestInit_ex2(h->inner.get(), h->md, nullptr) == 1 &&
                    EVP_DigestUpdate(h->inner.get(), ipad, kBlockBytes) == 1 &&
                    EVP_DigestInit_ex2(h->outer.get(), h->md, nullptr) == 1 &&
                    EVP_DigestUpdate(h->outer.get(), opad, kBlockBytes) == 1;
    OPENSSL_cleanse(ipad, sizeof(ipad));
    OPENSSL_cleanse(opad, sizeof(opad));
    return ok ? std::move(h) : nullptr;
  }

  // MAC of `message` into `out`. The keyed states are only read (copied), so any number of
  // threads may call this at once; each uses its own scratch context.
  bool Compute(std::string_view message, uint8_t out[kDigestBytes]) const {
    thread_local MdCtxPtr scratch(EVP_MD_CTX_new());
    if (!scratch) return false;
    uint8_t inner_digest[kDigestBytes];
    unsigned int len = 0;
    return EVP_MD_CTX_copy_ex(scratch.get(), inner.get()) == 1 &&
           EVP_DigestUpdate(scratch.get(), message.data(), message.size()) == 1 &&
           EVP_DigestFinal_ex(scratch.get(), inner_digest, &len) == 1 &&
           EVP_MD_CTX_copy_ex(scratch.get(), outer.get()) == 1 &&
           EVP_DigestUpdate(scratch.get(), inner_digest, kDigestBytes) == 1 &&
           EVP_DigestFinal_ex(scratch.get(), out, &len) == 1;
  }
};

std::string_view ToString(Permission permission) {
  switch (permission) {
    case Permission::kTaskCreate:
      return "TASK_CREATE";
    case Permission::kTaskRead:
      return "TASK_READ";
    case Permission::kTaskUpdate:
      return "TASK_UPDATE";
    case Permission::kTaskDelete:
      return "TASK_DELETE";
    case Permission::kTaskExecute:
      return "TASK_EXECUTE";
  }
  return "UNKNOWN";
}

std::optional<Permission> ParsePermission(std::string_view name) {
  for (Permission p : kAllPermissions) {
    if (ToString(p) == name) return p;
  }
  return std::nullopt;
}

std::string ToString(Permissions p) {
  std::string out;
  for (Permission one : kAllPermissions) {
    if (!p.Has(one)) continue;
    if (!out.empty()) out.push_back(',');
    out.append(ToString(one));
  }
  return out;
}

std::string_view ToString(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kViewer:
      return "viewer";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kOperator, Role::kViewer}) {
    if (ToString(r) == name) return r;
  }
  return std::nullopt;
}

Permissions RolePermissions(Role role) {
  switch (role) {
    case Role::kAdmin:
      return Permissions::All();
    case Role::kOperator:
      return Permission::kTaskCreate | Permission::kTaskRead | Permission::kTaskUpdate |
             Permission::kTaskExecute;
    case Role::kViewer:
      return Permission::kTaskRead;
  }
  return {};
}

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(std::string_view secret,
                                                         JwtVerifierOptions options) {
  if (secret.empty()) return Status::InvalidArgument("jwt secret is empty");
  if (options.leeway_seconds < 0) {
    return Status::InvalidArgument("leeway_seconds must be >= 0");
  }
  std::unique_ptr<Hmac> hmac = Hmac::Create(secret);
  if (!hmac) return Status::Internal("OpenSSL cannot provide HMAC-SHA256");
  const uint64_t id = next_verifier_id.fetch_add(1, std::memory_order_relaxed);
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(hmac), options, id));
}

JwtVerifier::JwtVerifier(std::unique_ptr<Hmac> hmac, JwtVerifierOptions options, uint64_t id)
    : hmac_(std::move(hmac)), options_(options), id_(id) {}

JwtVerifier::~JwtVerifier() = default;

Status JwtVerifier::CheckTimes(const Claims& claims, int64_t now) const {
  // 128-bit arithmetic: exp, nbf and the leeway come from the token or the caller and may sit
  // anywhere in int64.
  const __int128 n = now, leeway = options_.leeway_seconds;
  if (n >= static_cast<__int128>(claims.exp) + leeway) return Refuse("token expired");
  if (claims.nbf != 0 && n < static_cast<__int128>(claims.nbf) - leeway) {
    return Refuse("token not yet valid");
  }
  return Status::Ok();
}

Result<Claims> JwtVerifier::Verify(std::string_view token, int64_t now_unix_seconds) const {
  if (token.size() > kMaxTokenBytes) return Refuse("token too large");
  if (!options_.cache || token.size() > kMaxCachedTokenBytes) {
    return VerifyUncached(token, now_unix_seconds);
  }
  CacheEntry& entry =
      ThreadCache().entries[std::hash<std::string_view>{}(token) & (kCacheEntries - 1)];
  if (entry.verifier_id == id_ && entry.token == token) {
    // The token text is byte-identical to one whose signature this verifier checked, so only
    // the time checks can change their answer.
    Status s = CheckTimes(entry.claims, now_unix_seconds);
    if (!s.ok()) return s;
    return entry.claims;
  }
  Result<Claims> r = VerifyUncached(token, now_unix_seconds);
  if (r.ok()) {
    entry.verifier_id = id_;
    entry.token.assign(token);
    entry.claims = *r;
  }
  return r;
}

Result<Claims> JwtVerifier::VerifyUncached(std::string_view token, int64_t now) const {
  if (token.size() > kMaxTokenBytes) return Refuse("token too large");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Refuse("malformed token: expected three dot-separated parts");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty()) return Refuse("malformed token: empty part");

  // The header only says which algorithm to use, and the only answer we accept is HS256.
  if (Status s = CheckHeader(header_b64); !s.ok()) return s;

  // The signature is checked before anything in the payload is read. An empty one is what an
  // alg "none" token carries; its header was refused above.
  if (sig_b64.empty()) return Refuse("malformed token: empty signature");
  std::string& buf = ThreadBuffer();
  if (!DecodeBase64Url(sig_b64, buf, 0))
    return Refuse("malformed token: signature is not base64url");
  if (buf.size() != kDigestBytes) return Refuse("invalid signature");
  uint8_t expected[kDigestBytes];
  if (!hmac_->Compute(token.substr(0, dot2), expected)) {
    return Status::Internal("HMAC-SHA256 failed");
  }
  if (CRYPTO_memcmp(expected, buf.data(), kDigestBytes) != 0) return Refuse("invalid signature");

  if (!DecodeBase64Url(payload_b64, buf, simdjson::SIMDJSON_PADDING)) {
    return Refuse("malformed token: payload is not base64url");
  }
  Claims claims;
  if (Status s = ReadPayload(buf.size() - simdjson::SIMDJSON_PADDING, claims); !s.ok()) return s;
  if (Status s = CheckTimes(claims, now); !s.ok()) return s;
  return claims;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = uint32_t{src[i]} << 16 | uint32_t{src[i + 1]} << 8 | src[i + 2];
    out.push_back(kB64Alphabet[v >> 18]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
    out.push_back(kB64Alphabet[v & 63]);
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{src[i]} << 16;
    out.push_back(kB64Alphabet[v >> 18]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    const uint32_t v = uint32_t{src[i]} << 16 | uint32_t{src[i + 1]} << 8;
    out.push_back(kB64Alphabet[v >> 18]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(kB64Alphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  if (!DecodeBase64Url(text, out, 0)) return std::nullopt;
  return out;
}

std::string SignJwtParts(std::string_view secret, std::string_view header_json,
                         std::string_view payload_json) {
  std::string token = Base64UrlEncode(header_json);
  token.push_back('.');
  token.append(Base64UrlEncode(payload_json));
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &len);
  token.push_back('.');
  token.append(Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), len)));
  return token;
}

std::string SignJwt(std::string_view secret, const Claims& claims) {
  std::string payload;
  JsonWriter w(payload);
  w.BeginObject();
  if (!claims.subject.empty()) w.Key("sub").String(claims.subject);
  if (!claims.role.empty()) w.Key("role").String(claims.role);
  const std::optional<Role> role = ParseRole(claims.role);
  const bool role_covers = role && RolePermissions(*role).HasAll(claims.permissions);
  if (!role_covers) {
    w.Key("permissions").BeginArray();
    for (Permission p : kAllPermissions) {
      if (claims.permissions.Has(p)) w.String(ToString(p));
    }
    w.EndArray();
  }
  if (claims.iat != 0) w.Key("iat").Int(claims.iat);
  if (claims.nbf != 0) w.Key("nbf").Int(claims.nbf);
  w.Key("exp").Int(claims.exp);
  w.EndObject();
  return SignJwtParts(secret, R"({"alg":"HS256","typ":"JWT"})", payload);
}

// ---- Secret file ----

namespace {

Status ErrnoStatus(const std::string& what, int err) {
  return Status::IOError(what + ": " + std::strerror(err));
}

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string_view TrimWhitespace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

// mkdir -p with mode 0700 for each directory created; existing ones are left as they are.
Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("data dir is empty");
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) == 0) continue;
    if (errno != EEXIST) return ErrnoStatus("cannot create directory " + prefix, errno);
    struct stat st;
    if (::stat(prefix.c_str(), &st) != 0) return ErrnoStatus("cannot stat " + prefix, errno);
    if (!S_ISDIR(st.st_mode)) return Status::IOError(prefix + " exists and is not a directory");
  }
  return Status::Ok();
}

// The secret in `path`; NotFound when the file does not exist.
Result<std::string> ReadSecretFile(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return ErrnoStatus("cannot open " + path, errno);
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return ErrnoStatus("cannot stat " + path, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::FailedPrecondition(path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition(path + " has mode " + mode +
                                      ", readable by other users; run: chmod 600 " + path);
  }
  std::string text(kMaxSecretFileBytes + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(f.fd, text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read " + path, errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxSecretFileBytes) return Status::InvalidArgument(path + " is too large");
  text.resize(got);
  const std::string_view secret = TrimWhitespace(text);
  if (secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument(path + " holds " + std::to_string(secret.size()) +
                                   " bytes of secret; at least " + std::to_string(kMinSecretBytes) +
                                   " are needed");
  }
  return std::string(secret);
}

std::string Hex(const uint8_t* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xF]);
  }
  return out;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Writes a fresh secret to a temporary file and links it to `path`. Ok: ours is in place.
// FailedPrecondition: `path` appeared meanwhile (another process won; read theirs).
Status CreateSecretFile(const std::string& dir, const std::string& path) {
  uint8_t random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) return Status::Internal("RAND_bytes failed");
  const std::string secret = Hex(random, sizeof(random));
  OPENSSL_cleanse(random, sizeof(random));
  uint8_t tag[8];
  if (RAND_bytes(tag, sizeof(tag)) != 1) return Status::Internal("RAND_bytes failed");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + Hex(tag, 8);
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (f.fd < 0) return ErrnoStatus("cannot create " + tmp, errno);
    Status s = WriteAll(f.fd, secret, tmp);
    if (s.ok() && ::fsync(f.fd) != 0) s = ErrnoStatus("cannot sync " + tmp, errno);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  // link() fails with EEXIST instead of replacing, so the first writer wins and a reader never
  // sees a partial file (unlike O_EXCL on the final name, which exposes it while it is written).
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return Status::FailedPrecondition(path + " was created concurrently");
    return ErrnoStatus("cannot create " + path, err);
  }
  // Make the new name durable, so a restart does not mint a different secret.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
  return Status::Ok();
}

}  // namespace

Result<std::string> LoadOrCreateSecret(const std::string& data_dir) {
  if (data_dir.empty()) return Status::InvalidArgument("data dir is empty");
  const std::string path = data_dir + "/jwt.secret";
  // Two rounds: a concurrent creator can make our create lose once; its file is then readable.
  for (int round = 0; round < 2; ++round) {
    Result<std::string> existing = ReadSecretFile(path);
    if (existing.ok() || existing.status().code() != Status::Code::kNotFound) return existing;
    if (Status s = MakeDirs(data_dir); !s.ok()) return s;
    Status s = CreateSecretFile(data_dir, path);
    if (!s.ok() && s.code() != Status::Code::kFailedPrecondition) return s;
    // Created, or lost the race: either way the file now holds the secret to use.
  }
  return ReadSecretFile(path);
}

Result<std::string> ResolveSecret(const std::string& data_dir) {
  const char* env = std::getenv("BMOS_JWT_SECRET");
  if (env != nullptr && env[0] != '\0') {
    const std::string secret(env);
    if (secret.size() < kMinSecretBytes) {
      return Status::InvalidArgument("BMOS_JWT_SECRET is shorter than " +
                                     std::to_string(kMinSecretBytes) + " bytes");
    }
    return secret;
  }
  return LoadOrCreateSecret(data_dir);
}

}  // namespace bmos::api
