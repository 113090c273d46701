/* encoded_words.h — RFC 2047 encoded-words ("=?charset?B?...?=", "=?charset?Q?...?=") in
 * the unstructured header fields we keep (Subject, the display names in From and To),
 * decoded to UTF-8. Most mail outside English encodes its Subject this way (a Chinese one is
 * nearly always "=?GB2312?B?...?=" or "=?UTF-8?B?...?="): undecoded, it can be neither read
 * nor searched. */
#ifndef MAILTAP_ENCODED_WORDS_H
#define MAILTAP_ENCODED_WORDS_H

#include <stddef.h>

/* The longest charset name taken from the wire ("ISO-2022-JP-2", "windows-1252" ...). */
#define ENCODED_WORD_CHARSET_MAX 40

/* Copies in[0..len) to out (at most cap - 1 bytes and a NUL; cap > 0), each well-formed
 * encoded-word replaced by its text in UTF-8 and the blanks between two adjacent
 * encoded-words dropped (RFC 2047 §6.2). A word that is malformed, in a charset iconv does
 * not know, or whose bytes are not valid in its charset is copied as it is. The result is
 * raw bytes (a decoded word may hold control characters): sanitize before showing it.
 * Returns the length written; when out fills up, the text is cut between two UTF-8
 * characters. */
size_t encoded_words_decode(char *out, size_t cap, const char *in, size_t len);

#endif
