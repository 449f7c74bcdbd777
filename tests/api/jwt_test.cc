#include "api/jwt.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bmos::api {
namespace {

using storage::Status;

constexpr std::string_view kSecret = "test-secret-0123456789abcdef";
constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kHs256Header = R"({"alg":"HS256","typ":"JWT"})";

std::unique_ptr<JwtVerifier> MakeVerifier(std::string_view secret = kSecret,
                                          JwtVerifierOptions options = {}) {
  auto v = JwtVerifier::Create(secret, options);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

Claims RoleClaims(std::string role, int64_t exp = kNow + 60) {
  Claims c;
  c.subject = "alice";
  c.role = std::move(role);
  c.iat = kNow;
  c.exp = exp;
  return c;
}

std::string Payload(std::string_view fields) { return "{" + std::string(fields) + "}"; }

// The error message of a refused token (and a failure if it was accepted).
std::string Refusal(const JwtVerifier& v, std::string_view token, int64_t now = kNow) {
  Result<Claims> r = v.Verify(token, now);
  EXPECT_FALSE(r.ok()) << "accepted: " << token;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  return r.status().message();
}

// ---- Permissions and roles ----

TEST(Permission, NamesRoundTrip) {
  for (Permission p : kAllPermissions) {
    EXPECT_EQ(ParsePermission(ToString(p)), p);
  }
  EXPECT_EQ(ToString(Permission::kTaskCreate), "TASK_CREATE");
  EXPECT_EQ(ToString(Permission::kTaskExecute), "TASK_EXECUTE");
  EXPECT_EQ(ParsePermission("task_read"), std::nullopt);
  EXPECT_EQ(ParsePermission("TASK_NUKE"), std::nullopt);
  EXPECT_EQ(ParsePermission(""), std::nullopt);
}

TEST(Permission, SetOperations) {
  Permissions p = Permission::kTaskRead | Permission::kTaskDelete;
  EXPECT_TRUE(p.Has(Permission::kTaskRead));
  EXPECT_TRUE(p.Has(Permission::kTaskDelete));
  EXPECT_FALSE(p.Has(Permission::kTaskCreate));
  EXPECT_TRUE(p.HasAll(Permission::kTaskRead));
  EXPECT_FALSE(p.HasAll(Permission::kTaskRead | Permission::kTaskCreate));
  EXPECT_TRUE(p.HasAll(Permissions()));
  EXPECT_EQ(ToString(p), "TASK_READ,TASK_DELETE");
  EXPECT_EQ(ToString(Permissions()), "");
  EXPECT_TRUE(Permissions().empty());
  EXPECT_EQ(Permissions::FromBits(0xFFFFFFFF), Permissions::All());
  EXPECT_EQ(ToString(Permissions::All()),
            "TASK_CREATE,TASK_READ,TASK_UPDATE,TASK_DELETE,TASK_EXECUTE");
}

TEST(Role, ParseIsExactLowerCase) {
  EXPECT_EQ(ParseRole("admin"), Role::kAdmin);
  EXPECT_EQ(ParseRole("operator"), Role::kOperator);
  EXPECT_EQ(ParseRole("viewer"), Role::kViewer);
  EXPECT_EQ(ParseRole("Admin"), std::nullopt);
  EXPECT_EQ(ParseRole("root"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
  for (Role r : {Role::kAdmin, Role::kOperator, Role::kViewer}) {
    EXPECT_EQ(ParseRole(ToString(r)), r);
  }
}

TEST(Role, Permissions) {
  EXPECT_EQ(RolePermissions(Role::kAdmin), Permissions::All());
  EXPECT_EQ(RolePermissions(Role::kOperator), Permission::kTaskCreate | Permission::kTaskRead |
                                                  Permission::kTaskUpdate |
                                                  Permission::kTaskExecute);
  EXPECT_EQ(RolePermissions(Role::kViewer), Permissions(Permission::kTaskRead));
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 12; ++n) {
    const std::string enc = Base64UrlEncode(bytes);
    EXPECT_EQ(enc.find('='), std::string::npos);
    EXPECT_EQ(Base64UrlDecode(enc), bytes) << n;
    bytes.push_back(static_cast<char>(0xF0 + n));  // high bytes exercise '-' and '_'
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(Base64Url, RejectsNonCanonicalText) {
  EXPECT_EQ(Base64UrlDecode("YQ=="), std::nullopt);  // padding
  EXPECT_EQ(Base64UrlDecode("+/8"), std::nullopt);   // standard alphabet
  EXPECT_EQ(Base64UrlDecode("Y"), std::nullopt);     // length 1 mod 4
  EXPECT_EQ(Base64UrlDecode("YR"), std::nullopt);    // stray low bits ("YQ" is "a")
  EXPECT_EQ(Base64UrlDecode("Y Q"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("YQ"), "a");
}

// ---- Sign and verify ----

TEST(JwtVerifier, CreateRefusesBadInput) {
  EXPECT_EQ(JwtVerifier::Create("").status().code(), Status::Code::kInvalidArgument);
  JwtVerifierOptions o;
  o.leeway_seconds = -1;
  EXPECT_EQ(JwtVerifier::Create(kSecret, o).status().code(), Status::Code::kInvalidArgument);
}

TEST(JwtVerifier, RoundTripEachRole) {
  auto v = MakeVerifier();
  for (Role role : {Role::kAdmin, Role::kOperator, Role::kViewer}) {
    const std::string token = SignJwt(kSecret, RoleClaims(std::string(ToString(role))));
    Result<Claims> r = v->Verify(token, kNow);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->subject, "alice");
    EXPECT_EQ(r->role, ToString(role));
    EXPECT_EQ(r->permissions, RolePermissions(role));
    EXPECT_EQ(r->exp, kNow + 60);
    EXPECT_EQ(r->iat, kNow);
    EXPECT_EQ(r->nbf, 0);
    EXPECT_EQ(token.substr(0, token.find('.')), Base64UrlEncode(kHs256Header));
    // A role token carries no permissions list.
    const size_t dot1 = token.find('.');
    const std::optional<std::string> payload =
        Base64UrlDecode(token.substr(dot1 + 1, token.rfind('.') - dot1 - 1));
    ASSERT_TRUE(payload.has_value());
    EXPECT_EQ(payload->find("permissions"), std::string::npos) << *payload;
  }
}

TEST(JwtVerifier, PermissionsClaim) {
  auto v = MakeVerifier();
  Claims c;
  c.permissions = Permission::kTaskCreate | Permission::kTaskExecute;
  c.exp = kNow + 60;
  Result<Claims> r = v->Verify(SignJwt(kSecret, c), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->permissions, c.permissions);
  EXPECT_EQ(r->role, "");
  EXPECT_EQ(r->subject, "");
}

TEST(JwtVerifier, RoleAndPermissionsGrantTheUnion) {
  auto v = MakeVerifier();
  const std::string token =
      SignJwtParts(kSecret, kHs256Header,
                   Payload(R"("role":"viewer","permissions":["TASK_DELETE"],"exp":)" +
                           std::to_string(kNow + 5)));
  Result<Claims> r = v->Verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->permissions, Permission::kTaskRead | Permission::kTaskDelete);
  EXPECT_EQ(r->role, "viewer");

  // SignJwt writes the list when the role does not cover the permissions asked for.
  Claims c = RoleClaims("viewer");
  c.permissions = Permission::kTaskDelete;
  r = v->Verify(SignJwt(kSecret, c), kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->permissions, Permission::kTaskRead | Permission::kTaskDelete);
}

TEST(JwtVerifier, NbfAndFractionalTimesAreRead) {
  auto v = MakeVerifier();
  const std::string token = SignJwtParts(
      kSecret, R"({"alg":"HS256"})",
      Payload(R"("role":"admin","nbf":)" + std::to_string(kNow) + R"(,"exp":1700000060.9)"));
  Result<Claims> r = v->Verify(token, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->nbf, kNow);
  EXPECT_EQ(r->exp, kNow + 60);
}

TEST(JwtVerifier, AgreesWithAPublishedToken) {
  // The example token of jwt.io, signed with "your-256-bit-secret". It has no exp, so a correct
  // signature check gets as far as the payload.
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  EXPECT_EQ(Refusal(*MakeVerifier("your-256-bit-secret"), token), "malformed token: missing exp");
  EXPECT_EQ(Refusal(*MakeVerifier("your-256-bit-secreT"), token), "invalid signature");
}

TEST(JwtVerifier, KeysOfEveryLengthMatchOpenSslHmac) {
  // Keys up to and beyond the 64-byte block (hashed first), against SignJwt's one-shot HMAC().
  for (size_t len : {1, 16, 63, 64, 65, 200}) {
    const std::string secret(len, 'k');
    auto v = MakeVerifier(secret);
    EXPECT_TRUE(v->Verify(SignJwt(secret, RoleClaims("admin")), kNow).ok()) << len;
    EXPECT_EQ(Refusal(*v, SignJwt(secret + "x", RoleClaims("admin"))), "invalid signature");
  }
}

TEST(JwtVerifier, RefusesForgedSignatures) {
  for (bool cache : {false, true}) {
    JwtVerifierOptions o;
    o.cache = cache;
    auto v = MakeVerifier(kSecret, o);
    const std::string token = SignJwt(kSecret, RoleClaims("viewer"));
    ASSERT_TRUE(v->Verify(token, kNow).ok());  // cached, when the cache is on

    std::string flipped_sig = token;
    char& c = flipped_sig[token.rfind('.') + 5];
    c = c == 'A' ? 'B' : 'A';
    EXPECT_EQ(Refusal(*v, flipped_sig), "invalid signature");

    // Changing the payload (an admin claim) without re-signing.
    const size_t dot1 = token.find('.'), dot2 = token.rfind('.');
    std::string forged_payload = token.substr(0, dot1 + 1) +
                                 Base64UrlEncode(Payload(R"("sub":"alice","role":"admin","exp":)" +
                                                         std::to_string(kNow + 60))) +
                                 token.substr(dot2);
    EXPECT_EQ(Refusal(*v, forged_payload), "invalid signature");

    EXPECT_EQ(Refusal(*MakeVerifier("another-secret-0123456789", o), token), "invalid signature");
    // Cut signature (31 bytes) and one with stray low bits.
    EXPECT_EQ(Refusal(*v, token.substr(0, token.size() - 3)), "invalid signature");
    std::string stray = token;
    stray.back() = static_cast<char>(stray.back() + 1);  // 43 chars: the last has 2 unused bits
    EXPECT_EQ(Refusal(*v, stray), "malformed token: signature is not base64url");
  }
}

TEST(JwtVerifier, RefusesAlgNone) {
  auto v = MakeVerifier();
  const std::string payload =
      Base64UrlEncode(Payload(R"("role":"admin","exp":)" + std::to_string(kNow + 60)));
  for (std::string_view header : {R"({"alg":"none","typ":"JWT"})", R"({"alg":"none"})"}) {
    const std::string token = Base64UrlEncode(header) + "." + payload + ".";
    EXPECT_EQ(Refusal(*v, token), "unsupported alg 'none'");
  }
  // Even with a valid HS256 signature over the same bytes.
  EXPECT_EQ(Refusal(*v, SignJwtParts(kSecret, R"({"alg":"none"})", Payload(R"("role":"admin")"))),
            "unsupported alg 'none'");
}

TEST(JwtVerifier, RefusesOtherAlgsAndBadHeaders) {
  auto v = MakeVerifier();
  const std::string payload = Payload(R"("role":"admin","exp":)" + std::to_string(kNow + 60));
  auto header_refusal = [&](std::string_view header) {
    return Refusal(*v, SignJwtParts(kSecret, header, payload));
  };
  EXPECT_EQ(header_refusal(R"({"alg":"HS512","typ":"JWT"})"), "unsupported alg 'HS512'");
  EXPECT_EQ(header_refusal(R"({"alg":"RS256"})"), "unsupported alg 'RS256'");
  EXPECT_EQ(header_refusal(R"({"alg":"hs256"})"), "unsupported alg 'hs256'");
  EXPECT_EQ(header_refusal(R"({"typ":"JWT"})"), "malformed token: header has no alg");
  EXPECT_EQ(header_refusal(R"({"alg":256})"),
            "malformed token: header field 'alg' is not a string");
  EXPECT_EQ(header_refusal(R"({"alg":"HS256","alg":"none"})"),
            "malformed token: duplicate header field 'alg'");
  EXPECT_EQ(header_refusal(R"({"alg":"HS256","typ":"JWS"})"), "unsupported typ 'JWS'");
  EXPECT_EQ(header_refusal(R"({"alg":"HS256","crit":["exp"]})"), "unsupported header field 'crit'");
  EXPECT_EQ(header_refusal("not json"), "malformed token: header is not a JSON object");
  EXPECT_EQ(header_refusal(R"(["alg","HS256"])"), "malformed token: header is not a JSON object");
  EXPECT_EQ(header_refusal(R"({"alg":"HS256")"), "malformed token: header is not a JSON object");
  // A long, non-ASCII alg is quoted short and printable.
  EXPECT_EQ(header_refusal(R"({"alg":"\u00e9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})"),
            "unsupported alg '??AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...'");
  // Any extra field (kid) is fine.
  EXPECT_TRUE(
      v->Verify(SignJwtParts(kSecret, R"({"kid":"k1","alg":"HS256"})", payload), kNow).ok());
}

TEST(JwtVerifier, RefusesBadPayloads) {
  auto v = MakeVerifier();
  auto refusal = [&](std::string_view payload) {
    return Refusal(*v, SignJwtParts(kSecret, kHs256Header, payload));
  };
  const std::string exp = R"("exp":)" + std::to_string(kNow + 60);
  EXPECT_EQ(refusal("not json"), "malformed token: payload is not a JSON object");
  EXPECT_EQ(refusal("[1,2]"), "malformed token: payload is not a JSON object");
  EXPECT_EQ(refusal(R"("admin")"), "malformed token: payload is not a JSON object");
  EXPECT_EQ(refusal(Payload(R"("role":"admin")")), "malformed token: missing exp");
  EXPECT_EQ(refusal(Payload(R"("role":"admin","exp":"soon")")),
            "malformed token: exp is not a number");
  EXPECT_EQ(refusal(Payload(R"("role":"admin","exp":1e300)")),
            "malformed token: exp is not a number");
  EXPECT_EQ(refusal(Payload(R"("role":"admin","exp":18446744073709551615)")),
            "malformed token: exp is not a number");
  EXPECT_EQ(refusal(Payload(R"("role":"admin",)" + exp + "," + exp)),
            "malformed token: duplicate claim 'exp'");
  EXPECT_EQ(refusal(Payload(R"("role":"admin","nbf":null,)" + exp)),
            "malformed token: nbf is not a number");
  EXPECT_EQ(refusal(Payload(R"("role":"root",)" + exp)), "unknown role 'root'");
  EXPECT_EQ(refusal(Payload(R"("role":"Admin",)" + exp)), "unknown role 'Admin'");
  EXPECT_EQ(refusal(Payload(R"("role":7,)" + exp)), "malformed token: role is not a string");
  EXPECT_EQ(refusal(Payload(R"("sub":7,"role":"admin",)" + exp)),
            "malformed token: sub is not a string");
  EXPECT_EQ(refusal(Payload(R"("permissions":["TASK_READ","TASK_NUKE"],)" + exp)),
            "unknown permission 'TASK_NUKE'");
  EXPECT_EQ(refusal(Payload(R"("role":"viewer","permissions":["task_read"],)" + exp)),
            "unknown permission 'task_read'");
  EXPECT_EQ(refusal(Payload(R"("permissions":"TASK_READ",)" + exp)),
            "malformed token: permissions is not an array");
  EXPECT_EQ(refusal(Payload(R"("permissions":[1],)" + exp)),
            "malformed token: permissions holds a non-string");
  EXPECT_EQ(refusal(Payload(R"("sub":"bob",)" + exp)), "token has no role or permissions");
  EXPECT_EQ(refusal(Payload(R"("permissions":[],)" + exp)), "token grants no permissions");
}

TEST(JwtVerifier, ExpiryAndNotBeforeWithoutLeeway) {
  auto v = MakeVerifier();  // leeway 0 by default
  const std::string token = SignJwt(kSecret, RoleClaims("admin", kNow + 10));
  EXPECT_TRUE(v->Verify(token, kNow + 9).ok());
  EXPECT_EQ(Refusal(*v, token, kNow + 10), "token expired");  // now == exp
  EXPECT_EQ(Refusal(*v, token, kNow + 11), "token expired");
  EXPECT_EQ(Refusal(*v, token, INT64_MAX), "token expired");

  Claims c = RoleClaims("admin");
  c.nbf = kNow + 5;
  const std::string later = SignJwt(kSecret, c);
  EXPECT_EQ(Refusal(*v, later, kNow), "token not yet valid");
  EXPECT_EQ(Refusal(*v, later, kNow + 4), "token not yet valid");
  EXPECT_TRUE(v->Verify(later, kNow + 5).ok());
}

TEST(JwtVerifier, LeewayWidensBothChecks) {
  JwtVerifierOptions o;
  o.leeway_seconds = 30;
  auto v = MakeVerifier(kSecret, o);
  const std::string token = SignJwt(kSecret, RoleClaims("admin", kNow));
  EXPECT_TRUE(v->Verify(token, kNow + 29).ok());
  EXPECT_EQ(Refusal(*v, token, kNow + 30), "token expired");
  Claims c = RoleClaims("admin");
  c.nbf = kNow + 30;
  EXPECT_TRUE(v->Verify(SignJwt(kSecret, c), kNow).ok());
  c.nbf = kNow + 31;
  EXPECT_EQ(Refusal(*v, SignJwt(kSecret, c), kNow), "token not yet valid");
}

TEST(JwtVerifier, RefusesMalformedTokens) {
  auto v = MakeVerifier();
  const std::string good = SignJwt(kSecret, RoleClaims("admin"));
  const size_t dot1 = good.find('.'), dot2 = good.rfind('.');
  const std::string three = "malformed token: expected three dot-separated parts";
  EXPECT_EQ(Refusal(*v, ""), three);
  EXPECT_EQ(Refusal(*v, "abc"), three);
  EXPECT_EQ(Refusal(*v, good.substr(0, dot2)), three);
  EXPECT_EQ(Refusal(*v, good + ".x"), three);
  EXPECT_EQ(Refusal(*v, good + "."), three);
  EXPECT_EQ(Refusal(*v, ".."), "malformed token: empty part");
  EXPECT_EQ(Refusal(*v, "." + good.substr(dot1 + 1)), "malformed token: empty part");
  EXPECT_EQ(Refusal(*v, good.substr(0, dot1 + 1) + good.substr(dot2)),
            "malformed token: empty part");
  EXPECT_EQ(Refusal(*v, good.substr(0, dot2 + 1)), "malformed token: empty signature");
  EXPECT_EQ(Refusal(*v, good + "="), "malformed token: signature is not base64url");
  EXPECT_EQ(Refusal(*v, "eyJhbGciOiJIUzI1NiJ9=" + good.substr(dot1)),
            "malformed token: header is not base64url");
  std::string std_alphabet = good;
  std_alphabet[dot1 - 1] = '+';
  EXPECT_EQ(Refusal(*v, std_alphabet), "malformed token: header is not base64url");
  std::string bad_payload = good;
  bad_payload[dot1 + 3] = '*';
  EXPECT_EQ(Refusal(*v, bad_payload), "invalid signature");  // signature first, then payload
  EXPECT_EQ(Refusal(*v, " " + good), "malformed token: header is not base64url");
}

TEST(JwtVerifier, TokenSizeCap) {
  auto v = MakeVerifier();
  EXPECT_EQ(Refusal(*v, std::string(kMaxTokenBytes + 1, 'a')), "token too large");
  // A big token just under the cap verifies (and is too big for the cache).
  Claims c = RoleClaims("admin");
  c.subject = std::string(5000, 's');
  const std::string big = SignJwt(kSecret, c);
  ASSERT_LE(big.size(), kMaxTokenBytes);
  Result<Claims> r = v->Verify(big, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->subject, c.subject);
  c.subject = std::string(6200, 's');
  const std::string too_big = SignJwt(kSecret, c);
  ASSERT_GT(too_big.size(), kMaxTokenBytes);
  EXPECT_EQ(Refusal(*v, too_big), "token too large");
}

TEST(JwtVerifier, CachedTokenStillExpires) {
  auto v = MakeVerifier();
  const std::string token = SignJwt(kSecret, RoleClaims("operator", kNow + 10));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(v->Verify(token, kNow).ok());  // miss, then hits
  Result<Claims> hit = v->Verify(token, kNow + 9);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(hit->permissions, RolePermissions(Role::kOperator));
  EXPECT_EQ(hit->subject, "alice");
  EXPECT_EQ(Refusal(*v, token, kNow + 10), "token expired");
  EXPECT_EQ(Refusal(*v, token, kNow + 1000), "token expired");
  // And a cached token with a future nbf is still checked against it.
  Claims c = RoleClaims("admin");
  c.nbf = kNow;
  const std::string later = SignJwt(kSecret, c);
  ASSERT_TRUE(v->Verify(later, kNow).ok());
  EXPECT_EQ(Refusal(*v, later, kNow - 1), "token not yet valid");
}

TEST(JwtVerifier, CacheIsPerVerifier) {
  const std::string token = SignJwt(kSecret, RoleClaims("admin"));
  auto good = MakeVerifier();
  ASSERT_TRUE(good->Verify(token, kNow).ok());
  // Same thread, same token text, another secret: the cached entry must not answer.
  auto other = MakeVerifier("rotated-secret-0123456789");
  EXPECT_EQ(Refusal(*other, token), "invalid signature");
  EXPECT_TRUE(good->Verify(token, kNow).ok());
}

TEST(JwtVerifier, ManyTokensThroughTheCache) {
  // More distinct tokens than cache slots, verified twice: evictions never give a wrong answer.
  auto v = MakeVerifier();
  std::vector<std::string> tokens;
  for (int i = 0; i < 600; ++i) {
    Claims c = RoleClaims(i % 2 ? "viewer" : "admin");
    c.subject = "user-" + std::to_string(i);
    tokens.push_back(SignJwt(kSecret, c));
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 600; ++i) {
      Result<Claims> r = v->Verify(tokens[i], kNow);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->subject, "user-" + std::to_string(i));
      EXPECT_EQ(r->role, i % 2 ? "viewer" : "admin");
    }
  }
}

TEST(JwtVerifier, ConcurrentVerify) {
  auto v = MakeVerifier();
  std::vector<std::string> tokens;
  for (const char* role : {"admin", "operator", "viewer"}) {
    tokens.push_back(SignJwt(kSecret, RoleClaims(role)));
  }
  const std::string forged = tokens[2].substr(0, tokens[2].size() - 3) + "AAA";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string& token = tokens[(i + t) % tokens.size()];
        if (!v->Verify(token, kNow).ok()) failures.fetch_add(1, std::memory_order_relaxed);
        if (v->Verify(forged, kNow).ok()) failures.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- Secret file ----

class SecretTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bmos_jwt_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ::unsetenv("BMOS_JWT_SECRET");
  }
  void TearDown() override {
    ::unsetenv("BMOS_JWT_SECRET");
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  static unsigned Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static void WriteFile(const std::string& path, const std::string& text, unsigned mode) {
    std::ofstream(path) << text;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }
  std::string root_;
};

TEST_F(SecretTest, CreatesPrivateFileAndRereadsIt) {
  const std::string dir = root_ + "/data/nested";
  Result<std::string> first = LoadOrCreateSecret(dir);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 64u);
  EXPECT_EQ(first->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(Mode(dir + "/jwt.secret"), 0600u);
  EXPECT_EQ(Mode(dir), 0700u);
  EXPECT_EQ(Mode(root_ + "/data"), 0700u);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);

  Result<std::string> again = LoadOrCreateSecret(dir);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *first);
  // Another data dir gets another secret.
  Result<std::string> other = LoadOrCreateSecret(root_ + "/other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *first);
}

TEST_F(SecretTest, RacingCreatorsAgree) {
  const std::string dir = root_ + "/race";
  std::vector<std::string> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      Result<std::string> r = LoadOrCreateSecret(dir);
      got[i] = r.ok() ? *r : "error: " + r.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& s : got) EXPECT_EQ(s, got[0]);
  EXPECT_EQ(got[0].size(), 64u);
}

TEST_F(SecretTest, RefusesFileReadableByOthers) {
  const std::string path = root_ + "/jwt.secret";
  WriteFile(path, std::string(64, 'a'), 0644);
  Result<std::string> r = LoadOrCreateSecret(root_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("chmod 600 " + path), std::string::npos)
      << r.status().message();
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_EQ(LoadOrCreateSecret(root_).status().code(), Status::Code::kFailedPrecondition);
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  Result<std::string> ok = LoadOrCreateSecret(root_);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, std::string(64, 'a'));
}

TEST_F(SecretTest, TrimsWhitespaceAndRefusesShortSecrets) {
  const std::string path = root_ + "/jwt.secret";
  WriteFile(path, "  0123456789abcdef0123\n", 0600);
  Result<std::string> r = LoadOrCreateSecret(root_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "0123456789abcdef0123");

  WriteFile(path, "short\n", 0600);
  EXPECT_EQ(LoadOrCreateSecret(root_).status().code(), Status::Code::kInvalidArgument);
  WriteFile(path, "", 0600);
  EXPECT_EQ(LoadOrCreateSecret(root_).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(SecretTest, RefusesDirectoryInPlaceOfFile) {
  ASSERT_EQ(::mkdir((root_ + "/jwt.secret").c_str(), 0700), 0);
  EXPECT_FALSE(LoadOrCreateSecret(root_).ok());
  // A data dir path through a regular file cannot be created.
  WriteFile(root_ + "/plain", "x", 0600);
  EXPECT_EQ(LoadOrCreateSecret(root_ + "/plain/sub").status().code(), Status::Code::kIOError);
  EXPECT_EQ(LoadOrCreateSecret("").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(SecretTest, EnvironmentVariableWins) {
  const std::string dir = root_ + "/env";
  ASSERT_EQ(::setenv("BMOS_JWT_SECRET", "from-the-environment-0123", 1), 0);
  Result<std::string> r = ResolveSecret(dir);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "from-the-environment-0123");
  EXPECT_FALSE(std::filesystem::exists(dir));  // no file was created

  ASSERT_EQ(::setenv("BMOS_JWT_SECRET", "too-short", 1), 0);
  EXPECT_EQ(ResolveSecret(dir).status().code(), Status::Code::kInvalidArgument);

  // Set but empty: the file is used.
  ASSERT_EQ(::setenv("BMOS_JWT_SECRET", "", 1), 0);
  Result<std::string> file = ResolveSecret(dir);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size(), 64u);
  EXPECT_EQ(*file, *LoadOrCreateSecret(dir));
}

}  // namespace
}  // namespace bmos::api
