/* text.h — safe handling of text that came off the wire: sanitizing for storage and
 * display, base64 decoding of SASL payloads, small case-insensitive helpers. */
#ifndef MAILTAP_TEXT_H
#define MAILTAP_TEXT_H

/* A numeric macro's value as a string literal: " (over " TEXT_XSTR(LIMIT) ")". */
#define TEXT_STR(x) #x
#define TEXT_XSTR(x) TEXT_STR(x)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes a sanitized, NUL-terminated copy of src[0..len) into dst (capacity cap >= 1).
 * Control bytes, C1 controls, DEL, backslash and bytes that are not valid UTF-8 become
 * visible escapes (\xNN, \\), so no escape sequence can ever reach a terminal or a log.
 * Valid UTF-8 is kept. Output is cut at a character boundary when cap is too small,
 * and then ends in "..." (from a cap of 16 up).
 * Returns the number of bytes written (excluding the NUL). */
size_t text_sanitize(char *dst, size_t cap, const char *src, size_t len);

/* Makes sanitized text[0..len) (in cap bytes) end in the cut marker "...", shortening it
 * at a character boundary to make room: for text cut before it was sanitized. Returns the
 * new length; text shorter than 16 bytes of cap, or already marked, is left as it is. */
size_t text_mark_cut(char *text, size_t cap, size_t len);

/* The longest prefix of UTF-8 text s[0..len) that is at most max bytes and does not end
 * inside a character: where to cut text that is already sanitized. */
size_t text_utf8_cut(const char *s, size_t len, size_t max);

/* Decodes one UTF-8 character strictly (no overlongs, surrogates or > U+10FFFF) into *cp;
 * returns its length, or 0 when s[0..avail) does not start with a valid one. */
size_t text_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp);

/* Bidi formatting controls (U+061C, U+200E/F, U+202A-E, U+2066-9) and the line and
 * paragraph separators (U+2028/9): valid characters that reorder or break what follows on
 * some terminals, so that text could pose as other text. Never shown raw. */
bool text_is_bidi_control(uint32_t cp);
/* A character that is never shown as it is: a C0 control, DEL, a C1 control or a bidi
 * control (the sanitizer, the CLI's output and JSON all escape the same set). */
bool text_is_unsafe_char(uint32_t cp);

/* Decodes standard base64 (whitespace ignored, '=' padding optional) into out
 * (capacity cap). Returns the decoded length, or -1 on a malformed or too long input. */
long text_base64_decode(unsigned char *out, size_t cap, const char *in, size_t len);

/* True when s[0..len) begins with the ASCII word `word`, case-insensitively. */
bool text_starts_with_ci(const char *s, size_t len, const char *word);

/* Case-insensitive search for needle inside s[0..len); returns offset or -1. */
long text_find_ci(const char *s, size_t len, const char *needle);

/* Wipes and frees a heap copy of something secret (*text, *len bytes); both reset. */
void text_secret_free(char **text, size_t *len);

/* Copies line[0..len) into out (capacity cap) with the echo of a hidden client line
 * masked (mask in its place): the whole line, and each of its words of 2 bytes or more
 * found as a word of the line, case-insensitively. Servers echo what they did not
 * understand, whole, by its first word, or upper-cased ("-ERR Unknown command: HUNTER2",
 * IMAP's "Hunter2!x BAD ..."): a password typed at the wrong prompt must not come back
 * that way. Returns the length (cut to cap). */
size_t text_mask_echo(char *out, size_t cap, const char *line, size_t len, const char *hidden,
                      size_t hidden_len, const char *mask);

/* Copies s[0..len) to dst (capacity cap), sanitized, after removing leading and
 * trailing spaces/tabs. Returns the length written, as text_sanitize(). */
size_t text_copy_trimmed(char *dst, size_t cap, const char *s, size_t len);

/* Extracts the address between '<' and '>' following a "FROM:" / "TO:" argument
 * (e.g. "FROM:<a@b> SIZE=10"); tolerates missing brackets. Result sanitized; returns its
 * length, as text_sanitize(). */
size_t text_extract_path(char *dst, size_t cap, const char *arg, size_t len);

#endif
