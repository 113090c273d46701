/* x509.c — bounded DER reader for the few X.509 fields mailtap reports (RFC 5280):
 * subject/issuer CN and O, validity, subjectAltName; RFC 6125 host name matching.
 * The reader never recurses (the structure is walked at fixed, known depths), compares
 * OIDs as bytes (a huge OID is just a long string that matches nothing) and checks every
 * length against the bytes that remain, in the manner of tcpdump's GET_ and TTEST macros. */
#include "protocols/x509.h"

#include <stdio.h>
#include <string.h>

#include "protocols/text.h"

/* ---- DER TLV reader ---- */

struct der {
    const uint8_t *p;
    size_t len;
};

enum {
    DER_BOOLEAN = 0x01, DER_INTEGER = 0x02, DER_OCTET_STRING = 0x04, DER_OID = 0x06,
    DER_UTF8 = 0x0C, DER_PRINTABLE = 0x13, DER_T61 = 0x14, DER_IA5 = 0x16,
    DER_UTCTIME = 0x17, DER_GENTIME = 0x18, DER_UNIVERSAL = 0x1C, DER_BMP = 0x1E,
    DER_SEQUENCE = 0x30, DER_SET = 0x31,
    DER_CTX0 = 0xA0, DER_CTX3 = 0xA3,
    DER_SAN_RFC822 = 0x81, DER_SAN_DNS = 0x82, DER_SAN_IP = 0x87,
};

/* Reads one TLV from *in into tag and val and advances *in. Only low-tag-number form and
 * definite lengths of at most 4 length bytes; the value must fit in what remains. */
static bool der_read(struct der *in, uint8_t *tag, struct der *val)
{
    if (in->len < 2)
        return false;
    uint8_t t = in->p[0];
    if ((t & 0x1F) == 0x1F)   /* high-tag-number form: nothing we read uses it */
        return false;
    size_t at = 1, len = in->p[at++];
    if (len & 0x80) {
        size_t nbytes = len & 0x7F;
        if (nbytes == 0 || nbytes > 4 || nbytes > in->len - at)   /* indefinite / too long */
            return false;
        len = 0;
        for (size_t i = 0; i < nbytes; i++)
            len = (len << 8) | in->p[at++];
    }
    if (len > in->len - at)
        return false;
    *tag = t;
    val->p = in->p + at;
    val->len = len;
    in->p += at + len;
    in->len -= at + len;
    return true;
}

static bool der_expect(struct der *in, uint8_t tag, struct der *val)
{
    uint8_t t;
    struct der save = *in;
    if (!der_read(in, &t, val) || t != tag) {
        *in = save;
        return false;
    }
    return true;
}

static bool der_oid_is(const struct der *oid, const uint8_t *bytes, size_t len)
{
    return oid->len == len && memcmp(oid->p, bytes, len) == 0;
}

static const uint8_t OID_CN[] = { 0x55, 0x04, 0x03 };    /* 2.5.4.3 commonName */
static const uint8_t OID_O[] = { 0x55, 0x04, 0x0A };     /* 2.5.4.10 organizationName */
static const uint8_t OID_SAN[] = { 0x55, 0x1D, 0x11 };   /* 2.5.29.17 subjectAltName */

/* ---- strings ---- */

/* Appends code point cp as UTF-8 to dst[*n..cap); stops quietly when full. */
static void utf8_put(char *dst, size_t cap, size_t *n, uint32_t cp)
{
    char tmp[4];
    size_t k;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = '?';
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else if (cp < 0x110000) {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    } else {
        tmp[0] = '?';
        k = 1;
    }
    if (*n + k > cap)
        return;
    memcpy(dst + *n, tmp, k);
    *n += k;
}

/* A DirectoryString value into a sanitized, NUL-terminated dst. BMPString (UCS-2) and
 * UniversalString (UCS-4) are converted to UTF-8 first; others are taken as bytes. */
static void der_string(char *dst, size_t cap, uint8_t tag, const struct der *v)
{
    char utf8[X509_NAME_MAX * 2];
    size_t n = 0;
    if (tag == DER_BMP || tag == DER_UNIVERSAL) {
        size_t width = tag == DER_BMP ? 2 : 4;
        for (size_t i = 0; i + width <= v->len && n < sizeof utf8 - 4; i += width) {
            uint32_t cp = 0;
            for (size_t k = 0; k < width; k++)
                cp = (cp << 8) | v->p[i + k];
            utf8_put(utf8, sizeof utf8, &n, cp);
        }
        text_sanitize(dst, cap, utf8, n);
    } else {
        text_sanitize(dst, cap, (const char *)v->p, v->len);
    }
}

static bool is_string_tag(uint8_t tag)
{
    return tag == DER_UTF8 || tag == DER_PRINTABLE || tag == DER_T61 || tag == DER_IA5 ||
           tag == DER_BMP || tag == DER_UNIVERSAL;
}

/* Lower-cases s[0..len) into dst when it looks like a host name (letters, digits, '-',
 * '.', '*', '_'); otherwise dst = "" (such a name can never match). */
static void host_lower(char *dst, size_t cap, const uint8_t *s, size_t len)
{
    dst[0] = '\0';
    if (len == 0 || len >= cap)
        return;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                   c == '*' || c == '_')) {
            dst[0] = '\0';
            return;
        }
        dst[i] = (char)c;
    }
    dst[len] = '\0';
}

/* ---- Name (SEQUENCE OF SET OF AttributeTypeAndValue) ---- */

/* Takes the last CN and the last O (the most specific ones). Returns false on malformed
 * input, keeping what was read. raw_cn/raw_cn_len receive the CN's value bytes. */
static bool parse_name(struct der name, char *cn, char *o, size_t cap, struct der *raw_cn)
{
    while (name.len > 0) {
        struct der rdn, atv;
        if (!der_expect(&name, DER_SET, &rdn))
            return false;
        while (rdn.len > 0) {
            struct der oid, value;
            uint8_t vtag;
            if (!der_expect(&rdn, DER_SEQUENCE, &atv) || !der_expect(&atv, DER_OID, &oid) ||
                !der_read(&atv, &vtag, &value))
                return false;
            if (!is_string_tag(vtag))
                continue;
            if (der_oid_is(&oid, OID_CN, sizeof OID_CN)) {
                der_string(cn, cap, vtag, &value);
                if (raw_cn)
                    *raw_cn = vtag == DER_BMP || vtag == DER_UNIVERSAL
                                  ? (struct der){ NULL, 0 } : value;
            } else if (der_oid_is(&oid, OID_O, sizeof OID_O)) {
                der_string(o, cap, vtag, &value);
            }
        }
    }
    return true;
}

/* ---- time ---- */

static bool digits(const uint8_t *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool x509_time_parse(uint8_t tag, const uint8_t *s, size_t len, int64_t *out)
{
    int year, mon, day, hh, mm, ss;
    size_t ylen = tag == DER_UTCTIME ? 2 : tag == DER_GENTIME ? 4 : 0;
    if (ylen == 0 || len != ylen + 11 || s[len - 1] != 'Z')
        return false;
    if (!digits(s, ylen, &year) || !digits(s + ylen, 2, &mon) ||
        !digits(s + ylen + 2, 2, &day) || !digits(s + ylen + 4, 2, &hh) ||
        !digits(s + ylen + 6, 2, &mm) || !digits(s + ylen + 8, 2, &ss))
        return false;
    if (ylen == 2)
        year += year >= 50 ? 1900 : 2000;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hh > 23 || mm > 59 ||
        ss > 60)
        return false;
    *out = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
    return true;
}

/* ---- subjectAltName ---- */

static void sans_append(struct x509_cert *c, const char *text)
{
    size_t used = strlen(c->sans), add = strlen(text);
    const char *sep = used ? ", " : "";
    if (used + strlen(sep) + add + 4 >= sizeof c->sans) {   /* keep room for "..." */
        if (used + 4 < sizeof c->sans && (used < 3 || strcmp(c->sans + used - 3, "...") != 0))
            memcpy(c->sans + used, used ? ",..." : "...", used ? 5 : 4);
        return;
    }
    snprintf(c->sans + used, sizeof c->sans - used, "%s%s", sep, text);
}

static void match_add(struct x509_cert *c, const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return;
    if (c->match_count >= X509_MATCH_MAX || c->match_pool_len + n + 1 > sizeof c->match_pool) {
        c->match_incomplete = true;
        return;
    }
    memcpy(c->match_pool + c->match_pool_len, name, n + 1);
    c->match_pool_len += n + 1;
    c->match_count++;
}

static void ip_text(char *dst, size_t cap, const struct der *v)
{
    if (v->len == 4) {
        snprintf(dst, cap, "%u.%u.%u.%u", v->p[0], v->p[1], v->p[2], v->p[3]);
    } else if (v->len == 16) {   /* full form, lower-case hex: compared as text */
        size_t n = 0;
        for (size_t i = 0; i < 16 && n + 6 < cap; i += 2)
            n += (size_t)snprintf(dst + n, cap - n, "%s%x", i ? ":" : "",
                                  (unsigned)(v->p[i] << 8 | v->p[i + 1]));
    } else {
        dst[0] = '\0';
    }
}

static bool parse_san(struct x509_cert *c, struct der value)
{
    struct der names, v;
    if (!der_expect(&value, DER_SEQUENCE, &names))
        return false;
    while (names.len > 0) {
        uint8_t tag;
        char shown[X509_NAME_MAX + 8], low[X509_NAME_MAX];
        if (!der_read(&names, &tag, &v))
            return false;
        c->san_count++;
        if (tag == DER_SAN_DNS) {
            text_sanitize(shown, sizeof shown, (const char *)v.p, v.len);
            sans_append(c, shown);
            c->has_dns_san = true;
            host_lower(low, sizeof low, v.p, v.len);
            match_add(c, low);
        } else if (tag == DER_SAN_IP) {
            char ip[48];
            ip_text(ip, sizeof ip, &v);
            snprintf(shown, sizeof shown, "IP:%s", ip[0] ? ip : "?");
            sans_append(c, shown);
            match_add(c, ip);
        }
    }
    return true;
}

static bool parse_extensions(struct x509_cert *c, struct der exts)
{
    struct der list, ext, oid, value, flag;
    if (!der_expect(&exts, DER_SEQUENCE, &list))
        return false;
    while (list.len > 0) {
        if (!der_expect(&list, DER_SEQUENCE, &ext) || !der_expect(&ext, DER_OID, &oid))
            return false;
        (void)der_expect(&ext, DER_BOOLEAN, &flag);   /* critical, optional */
        if (!der_expect(&ext, DER_OCTET_STRING, &value))
            return false;
        if (der_oid_is(&oid, OID_SAN, sizeof OID_SAN) && !parse_san(c, value))
            return false;
    }
    return true;
}

/* ---- certificate ---- */

int x509_parse(const uint8_t *der, size_t len, struct x509_cert *c)
{
    memset(c, 0, sizeof *c);
    struct der in = { der, len }, cert, tbs, skip, issuer, validity, subject, t1, t2;
    struct der raw_cn = { NULL, 0 }, dummy;
    uint8_t tag1, tag2;
    if (!der_expect(&in, DER_SEQUENCE, &cert) || !der_expect(&cert, DER_SEQUENCE, &tbs))
        return -1;
    (void)der_expect(&tbs, DER_CTX0, &skip);   /* version, optional */
    if (!der_expect(&tbs, DER_INTEGER, &skip) || !der_expect(&tbs, DER_SEQUENCE, &skip) ||
        !der_expect(&tbs, DER_SEQUENCE, &issuer))
        return -1;
    if (!parse_name(issuer, c->issuer_cn, c->issuer_o, sizeof c->issuer_cn, NULL))
        return -1;
    if (!der_expect(&tbs, DER_SEQUENCE, &validity) || !der_read(&validity, &tag1, &t1) ||
        !der_read(&validity, &tag2, &t2))
        return -1;
    c->has_validity = x509_time_parse(tag1, t1.p, t1.len, &c->not_before) &&
                      x509_time_parse(tag2, t2.p, t2.len, &c->not_after);
    if (!der_expect(&tbs, DER_SEQUENCE, &subject))
        return -1;
    c->self_issued = subject.len == issuer.len && memcmp(subject.p, issuer.p, issuer.len) == 0;
    if (!parse_name(subject, c->subject_cn, c->subject_o, sizeof c->subject_cn, &raw_cn))
        return -1;
    host_lower(c->match_cn, sizeof c->match_cn, raw_cn.p, raw_cn.len);
    if (!der_expect(&tbs, DER_SEQUENCE, &skip))   /* subjectPublicKeyInfo */
        return -1;
    while (tbs.len > 0) {   /* [1] [2] unique IDs, [3] extensions */
        uint8_t tag;
        if (!der_read(&tbs, &tag, &dummy))
            return -1;
        if (tag == DER_CTX3 && !parse_extensions(c, dummy))
            return -1;
    }
    c->complete = true;
    return 0;
}

/* ---- RFC 6125 name checks ---- */

static bool is_ip_literal(const char *h)
{
    if (strchr(h, ':'))
        return true;
    for (const char *s = h; *s; s++)
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return false;
    return *h != '\0';
}

/* Lower-cases host into dst without one trailing dot; false when empty or too long. */
static bool host_norm(char *dst, size_t cap, const char *host)
{
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = host[i];
        dst[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    dst[n] = '\0';
    return true;
}

bool x509_hostname_match(const char *pattern, const char *host)
{
    char p[X509_NAME_MAX], h[X509_NAME_MAX];
    if (!host_norm(p, sizeof p, pattern) || !host_norm(h, sizeof h, host))
        return false;
    if (!strchr(p, '*'))
        return strcmp(p, h) == 0;
    /* "*." + at least two labels, no other '*', and not on an IP literal */
    const char *rest = p + 2;
    if (p[0] != '*' || p[1] != '.' || strchr(rest, '*') || !strchr(rest, '.') ||
        rest[0] == '.' || is_ip_literal(h))
        return false;
    const char *dot = strchr(h, '.');
    if (!dot || dot == h)   /* the wildcard stands for exactly one non-empty label */
        return false;
    return strcmp(dot + 1, rest) == 0;
}

bool x509_name_matches(const struct x509_cert *c, const char *host)
{
    bool ip = is_ip_literal(host);
    const char *s = c->match_pool;
    for (unsigned i = 0; i < c->match_count; i++) {
        bool entry_ip = is_ip_literal(s);
        if (ip == entry_ip && x509_hostname_match(s, host))
            return true;
        s += strlen(s) + 1;
    }
    if (!c->has_dns_san && !ip && c->match_cn[0])
        return x509_hostname_match(c->match_cn, host);
    return false;
}
