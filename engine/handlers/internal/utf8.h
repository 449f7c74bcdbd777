// UTF-8 helpers of the handlers: validation (RFC 3629), decoding, and positions as a person
// counts them (line, column in characters).
//
// Thread-safety: pure functions.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_UTF8_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bmos::engine::handlers::internal {

// The offset of the first byte of `text` that does not start or continue a well-formed UTF-8
// sequence (overlong forms, surrogates and code points past U+10FFFF are ill-formed), or npos
// when all of `text` is well-formed. A sequence cut off by the end of `text` is ill-formed at its
// first byte.
size_t FindInvalidUtf8(std::string_view text);

// The code point starting at text[*pos]; advances *pos past it. An ill-formed byte decodes as
// U+FFFD and advances by one. REQUIRES: *pos < text.size().
char32_t DecodeUtf8(std::string_view text, size_t* pos);

// Appends the UTF-8 encoding of `cp` (U+FFFD for a surrogate or a value past U+10FFFF).
void AppendUtf8(std::string* out, char32_t cp);

// Number of characters (code points; an ill-formed byte counts as one) in `text`.
size_t CountChars(std::string_view text);

// A 1-based line and column (in characters) in a text.
struct TextPosition {
  uint64_t line = 1;
  uint64_t column = 1;
};

// Moves `pos` over `text`: "\n", "\r\n" and a lone "\r" end a line.
void Advance(TextPosition* pos, std::string_view text);

// Whether `cp` is a CJK ideograph or kana (the scripts written without spaces between words).
bool IsCjk(char32_t cp);

// ASCII lower case of `s` (other bytes unchanged).
std::string AsciiLower(std::string_view s);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_UTF8_H_
