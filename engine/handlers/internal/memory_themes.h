// Themes of a feedback text for extract_memory.
//
// Space-separated text (Latin, Greek, Cyrillic letters and digits): words are lower-cased
// (ASCII), words of one character, numbers and stop words are dropped, and each remaining word is
// a theme, as is each pair of consecutive remaining words within a clause ("delivery was slow"
// gives "delivery", "slow", "delivery slow"). Negations (not, no, never, ...) are not themes on
// their own but join pairs ("not good"). Punctuation ends a clause.
// CJK text: each pair of consecutive ideographs (or kana) in a run is a theme, except pairs with a
// function character (的 了 是 我 们 ...); a run of one character gives none.
//
// Thread-safety: pure function.
#ifndef BMOS_ENGINE_HANDLERS_INTERNAL_MEMORY_THEMES_H_
#define BMOS_ENGINE_HANDLERS_INTERNAL_MEMORY_THEMES_H_

#include <string>
#include <string_view>
#include <vector>

namespace bmos::engine::handlers::internal {

struct Theme {
  std::string text;
  bool cjk = false;
};

// The distinct themes of `text` (valid UTF-8), in order of first appearance.
std::vector<Theme> ExtractThemes(std::string_view text);

}  // namespace bmos::engine::handlers::internal

#endif  // BMOS_ENGINE_HANDLERS_INTERNAL_MEMORY_THEMES_H_
