/* safetext.h — the draw-time guard and width arithmetic for every string the console
 * prints. No ncurses here, so the guard is unit-tested without a terminal. */
#ifndef MAILTAP_UI_SAFETEXT_H
#define MAILTAP_UI_SAFETEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Writes into out (capacity cap >= 1, NUL-terminated) the longest prefix of s[0..len) that
 * fills at most `cols` terminal columns, and returns the columns used. Whatever could move
 * the cursor or talk to the terminal becomes '?': bytes < 0x20, 0x7f, C1 controls (raw bytes
 * 0x80-0x9f and U+0080-U+009F), invalid UTF-8, characters wcwidth() calls unprintable, and
 * bidirectional overrides. With utf8 false (C/POSIX locale) each non-ASCII character is one
 * '?'. With ellipsis, a cut string ends in "…" (utf8) or "~". */
int safe_fit(char *out, size_t cap, const char *s, size_t len, int cols, bool utf8,
             bool ellipsis);

/* Columns s[0..len) takes once guarded (as safe_fit() would print it). */
int safe_width(const char *s, size_t len, bool utf8);

/* Bytes of s[0..len) that fit in `cols` columns, cut at a character boundary. */
size_t safe_cut(const char *s, size_t len, int cols, bool utf8);

#endif
