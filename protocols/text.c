/* text.c — sanitizing wire text, base64, case-insensitive helpers. */
#include "text.h"

#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

size_t text_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

size_t text_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t need;
    uint32_t c;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) { need = 2; c = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 3; c = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 4; c = b & 0x07; }
    else return 0;
    if (avail < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((need == 3 && c < 0x800) || (need == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return need;
}

bool text_is_bidi_control(uint32_t cp)
{
    return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

bool text_is_unsafe_char(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || text_is_bidi_control(cp);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not valid, is a C1 control
 * (U+0080..U+009F: some terminals obey them) or a bidi control. */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
    uint32_t cp;
    size_t n = text_utf8_decode(s, avail, &cp);
    return n > 1 && text_is_unsafe_char(cp) ? 0 : n;
}

/* text_sanitize() without the cut marker; *taken: how many bytes of src were used. */
static size_t sanitize_prefix(char *dst, size_t cap, const char *src, size_t len, size_t *taken)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;
    while (i < len) {
        /* Most text is a run of printable ASCII: copied as it is, without a per-byte
         * UTF-8 check (which was most of the transcript's cost). */
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '\\')
            run++;
        if (run > i) {
            size_t room = cap - 1 - out, n = run - i < room ? run - i : room;
            memcpy(dst + out, s + i, n);
            out += n;
            i += n;
            if (i < run)
                break;   /* full */
            continue;
        }
        unsigned char b = s[i];
        size_t seq = utf8_sequence_length(s + i, len - i);
        if (seq == 1 && b >= 0x20 && b != 0x7f && b != '\\') {
            if (out + 1 >= cap)
                break;
            dst[out++] = (char)b;
            i++;
        } else if (seq == 1 && b == '\\') {
            if (out + 2 >= cap)
                break;
            dst[out++] = '\\';
            dst[out++] = '\\';
            i++;
        } else if (seq > 1) {
            if (out + seq >= cap)
                break;
            memcpy(dst + out, s + i, seq);
            out += seq;
            i += seq;
        } else {
            if (out + 4 >= cap)
                break;
            dst[out++] = '\\';
            dst[out++] = 'x';
            dst[out++] = hex_digits[b >> 4];
            dst[out++] = hex_digits[b & 0xf];
            i++;
        }
    }
    dst[out] = '\0';
    *taken = i;
    return out;
}

/* Room a cut needs for its marker and enough text before it to be worth one. */
#define CUT_MARKER "..."
#define CUT_MARKER_MIN_CAP 16

size_t text_mark_cut(char *text, size_t cap, size_t len)
{
    size_t marker = sizeof CUT_MARKER - 1;
    if (cap < CUT_MARKER_MIN_CAP || len >= cap ||
        (len >= marker && memcmp(text + len - marker, CUT_MARKER, marker) == 0))
        return len;
    size_t keep = text_utf8_cut(text, len, cap - 1 - marker);
    memcpy(text + keep, CUT_MARKER, marker + 1);
    return keep + marker;
}

size_t text_sanitize(char *dst, size_t cap, const char *src, size_t len)
{
    size_t taken;
    if (cap == 0)
        return 0;
    size_t out = sanitize_prefix(dst, cap, src, len, &taken);
    if (taken == len || cap < CUT_MARKER_MIN_CAP)
        return out;
    /* Cut: again with room for the marker, so a cut field never looks whole (an
     * address cut before its end would otherwise read as a complete one). */
    out = sanitize_prefix(dst, cap - (sizeof CUT_MARKER - 1), src, len, &taken);
    memcpy(dst + out, CUT_MARKER, sizeof CUT_MARKER);
    return out + sizeof CUT_MARKER - 1;
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long text_base64_decode(unsigned char *out, size_t cap, const char *in, size_t len)
{
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    bool padding = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        int v = base64_value(c);
        if (v < 0 || padding)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    return (long)n;
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool text_starts_with_ci(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (len < wl)
        return false;
    for (size_t i = 0; i < wl; i++)
        if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i]))
            return false;
    return true;
}

static bool same_ci(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

long text_find_ci(const char *s, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    if (nl == 0)
        return 0;
    if (nl > len)
        return -1;
    /* Reply classification tries dozens of phrases on every failure reply: candidates are
     * found by their first byte in either case (memchr), not compared at every offset. */
    const unsigned char *hay = (const unsigned char *)s, *pat = (const unsigned char *)needle;
    unsigned char lower = ascii_lower(pat[0]);
    unsigned char upper = lower >= 'a' && lower <= 'z' ? (unsigned char)(lower - 32) : lower;
    const unsigned char *end = hay + (len - nl) + 1;   /* past the last offset that fits */
    /* The next occurrence of each case; only the one just tried is searched again, from
     * past it: linear in len. */
    const unsigned char *next_lower = memchr(hay, lower, (size_t)(end - hay));
    const unsigned char *next_upper = upper != lower ? memchr(hay, upper, (size_t)(end - hay))
                                                     : NULL;
    while (next_lower || next_upper) {
        bool lower_first = !next_upper || (next_lower && next_lower < next_upper);
        const unsigned char *at = lower_first ? next_lower : next_upper;
        if (same_ci(at + 1, pat + 1, nl - 1))
            return (long)(at - hay);
        const unsigned char *from = at + 1;
        const unsigned char *found = from < end ? memchr(from, lower_first ? lower : upper,
                                                         (size_t)(end - from)) : NULL;
        if (lower_first)
            next_lower = found;
        else
            next_upper = found;
    }
    return -1;
}

size_t text_copy_trimmed(char *dst, size_t cap, const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    return text_sanitize(dst, cap, s, len);
}

size_t text_extract_path(char *dst, size_t cap, const char *arg, size_t len)
{
    const char *colon = memchr(arg, ':', len);
    if (colon) {
        len -= (size_t)(colon + 1 - arg);
        arg = colon + 1;
    }
    while (len > 0 && (*arg == ' ' || *arg == '\t')) {
        arg++;
        len--;
    }
    if (len > 0 && *arg == '<') {
        const char *close = memchr(arg, '>', len);
        size_t inner = close ? (size_t)(close - arg - 1) : len - 1;
        return text_sanitize(dst, cap, arg + 1, inner);
    }
    size_t word = 0;
    while (word < len && arg[word] != ' ' && arg[word] != '\t')
        word++;
    return text_sanitize(dst, cap, arg, word);
}

static bool word_byte(char c)
{
    return c != ' ' && c != '\t' && c != ':' && c != '"' && c != '\'' && c != '(' && c != ')' &&
           c != '[' && c != ']' && c != ',';
}

/* Does s[0..len) begin with w[0..wl), case-insensitively? */
static bool starts_ci(const char *s, size_t len, const char *w, size_t wl)
{
    return wl <= len && same_ci((const unsigned char *)s, (const unsigned char *)w, wl);
}

size_t text_mask_echo(char *out, size_t cap, const char *line, size_t len, const char *hidden,
                      size_t hidden_len, const char *mask)
{
    size_t n = 0, mask_len = strlen(mask);
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len && n < cap;) {
        size_t hit = 0;
        bool at_word = i == 0 || !word_byte(line[i - 1]);
        if (at_word && hidden_len > 0 && starts_ci(line + i, len - i, hidden, hidden_len) &&
            (i + hidden_len == len || !word_byte(line[i + hidden_len])))
            hit = hidden_len;
        for (size_t w = 0; !hit && at_word && w < hidden_len;) {
            while (w < hidden_len && (hidden[w] == ' ' || hidden[w] == '\t'))
                w++;
            size_t e = w;
            while (e < hidden_len && hidden[e] != ' ' && hidden[e] != '\t')
                e++;
            if (e - w >= 2 && starts_ci(line + i, len - i, hidden + w, e - w) &&
                (i + (e - w) == len || !word_byte(line[i + (e - w)])))
                hit = e - w;
            w = e;
        }
        if (hit) {
            size_t take = mask_len < cap - n ? mask_len : cap - n;
            memcpy(out + n, mask, take);
            n += take;
            i += hit;
        } else {
            out[n++] = line[i++];
        }
    }
    return n;
}

void text_secret_free(char **text, size_t *len)
{
    if (*text)
        explicit_bzero(*text, *len);
    free(*text);
    *text = NULL;
    *len = 0;
}
