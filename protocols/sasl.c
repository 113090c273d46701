/* sasl.c — SASL mechanism names and the user a client response names (never a secret). */
#include "sasl.h"

#include "text.h"

#include <string.h>

static const char *const mech_names[SASL_MECH_COUNT] = {
    [SASL_MECH_UNKNOWN] = "unknown",
    [SASL_MECH_PLAIN] = "PLAIN",
    [SASL_MECH_LOGIN] = "LOGIN",
    [SASL_MECH_CRAM_MD5] = "CRAM-MD5",
    [SASL_MECH_XOAUTH2] = "XOAUTH2",
    [SASL_MECH_OAUTHBEARER] = "OAUTHBEARER",
    [SASL_MECH_EXTERNAL] = "EXTERNAL",
    [SASL_MECH_SCRAM] = "SCRAM-*",
};

bool sasl_mech_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
            c != '-' && c != '_')
            return false;
    }
    return true;
}

enum sasl_mech sasl_mech_from_name(const char *name, size_t len)
{
    for (int m = SASL_MECH_UNKNOWN + 1; m < SASL_MECH_COUNT; m++)
        if (m != SASL_MECH_SCRAM && len == strlen(mech_names[m]) &&
            text_starts_with_ci(name, len, mech_names[m]))
            return (enum sasl_mech)m;
    /* SCRAM-SHA-1, SCRAM-SHA-256, their -PLUS forms: one first message for all */
    if (len > 6 && text_starts_with_ci(name, len, "SCRAM-") && sasl_mech_name_valid(name, len))
        return SASL_MECH_SCRAM;
    return SASL_MECH_UNKNOWN;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
    return (unsigned)mech < SASL_MECH_COUNT ? mech_names[mech] : mech_names[SASL_MECH_UNKNOWN];
}

/* The span [from, next `stop` byte) of d[0..len); false when there is no `stop`. */
static bool span_to(const unsigned char *d, size_t len, size_t from, unsigned char stop,
                    size_t *span_len)
{
    const unsigned char *end = from <= len ? memchr(d + from, stop, len - from) : NULL;
    if (!end)
        return false;
    *span_len = (size_t)(end - (d + from));
    return true;
}

/* GS2 header (RFC 5801) opening OAUTHBEARER and SCRAM: cbind-flag "," ["a=" authzid] ",".
 * Returns the offset just after it (authzid at *az, *az_len bytes, maybe 0), or 0. It
 * ends before any \x01, where OAUTHBEARER's token may begin. */
static size_t gs2_header(const unsigned char *d, size_t len, size_t *az, size_t *az_len)
{
    size_t flag, field;
    const unsigned char *soh = memchr(d, 0x01, len);
    if (soh)
        len = (size_t)(soh - d);
    if (!span_to(d, len, 0, ',', &flag) || !span_to(d, len, flag + 1, ',', &field))
        return 0;
    if (field > 0 && (field < 2 || d[flag + 1] != 'a' || d[flag + 2] != '='))
        return 0;
    *az = flag + 1 + (field > 0 ? 2 : 0);
    *az_len = field > 0 ? field - 2 : 0;
    return flag + 1 + field + 1;
}

bool sasl_user_name(enum sasl_mech mech, const unsigned char *decoded, size_t len,
                    const unsigned char **user, size_t *user_len)
{
    size_t at = 0, n = 0, first, rest;
    if (decoded == NULL || len == 0)
        return false;
    switch (mech) {
    case SASL_MECH_PLAIN:   /* authcid, else authzid; the password is after the 2nd NUL */
        if (!span_to(decoded, len, 0, 0, &first) || !span_to(decoded, len, first + 1, 0, &n))
            return false;
        if (n > 0)
            at = first + 1;
        else
            n = first;
        break;
    case SASL_MECH_LOGIN:
    case SASL_MECH_EXTERNAL:   /* a NUL says it is not a bare name: maybe PLAIN's form */
        if (memchr(decoded, 0, len) != NULL)
            return false;
        n = len;
        break;
    case SASL_MECH_CRAM_MD5:   /* the digest is the last word */
        for (n = len; n > 0 && decoded[n - 1] != ' '; n--)
            ;
        if (n == 0)
            return false;
        n--;
        break;
    case SASL_MECH_XOAUTH2:
        if (!text_starts_with_ci((const char *)decoded, len, "user=") ||
            !span_to(decoded, len, 5, 0x01, &n))
            return false;
        at = 5;
        break;
    case SASL_MECH_OAUTHBEARER:
        if (gs2_header(decoded, len, &at, &n) == 0)
            return false;
        break;
    case SASL_MECH_SCRAM:   /* client-first: gs2 header, [m=ext,] n=user, r=nonce */
        if ((rest = gs2_header(decoded, len, &at, &n)) == 0)
            return false;
        if (len - rest >= 2 && decoded[rest] == 'm' && decoded[rest + 1] == '=' &&
            span_to(decoded, len, rest, ',', &n))
            rest += n + 1;
        if (len - rest < 2 || decoded[rest] != 'n' || decoded[rest + 1] != '=' ||
            !span_to(decoded, len, rest + 2, ',', &n))
            return false;
        at = rest + 2;
        break;
    case SASL_MECH_UNKNOWN:
    case SASL_MECH_COUNT:
    default:
        return false;
    }
    if (n == 0)
        return false;
    *user = decoded + at;
    *user_len = n;
    return true;
}

size_t sasl_response_user(enum sasl_mech mech, const char *b64, size_t len,
                          unsigned char *buf, size_t cap)
{
    const unsigned char *user;
    size_t user_len = 0;
    long n = text_base64_decode(buf, cap, b64, len);
    if (n > 0 && sasl_user_name(mech, buf, (size_t)n, &user, &user_len))
        memmove(buf, user, user_len);
    else
        user_len = 0;
    explicit_bzero(buf + user_len, cap - user_len);   /* what is left held the secret */
    return user_len;
}
