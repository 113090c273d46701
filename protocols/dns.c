/* dns.c — DNS message decoding with bounds-checked reads and iterative, strictly
 * backwards name decompression; DNS-over-TCP length-prefix reassembly. */
#include "protocols/dns.h"

#include "protocols/text.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* --- bounds-checked reader ------------------------------------------------------- */

/* Every read checks what is left first; a failed read leaves pos unchanged. */
struct reader {
    const uint8_t *msg;
    size_t len, pos;
};

static bool get_u8(struct reader *r, uint8_t *v)
{
    if (r->pos >= r->len)
        return false;
    *v = r->msg[r->pos++];
    return true;
}

static bool get_u16(struct reader *r, uint16_t *v)
{
    if (r->len - r->pos < 2)
        return false;
    *v = (uint16_t)(r->msg[r->pos] << 8 | r->msg[r->pos + 1]);
    r->pos += 2;
    return true;
}

static bool get_u32(struct reader *r, uint32_t *v)
{
    if (r->len - r->pos < 4)
        return false;
    *v = (uint32_t)r->msg[r->pos] << 24 | (uint32_t)r->msg[r->pos + 1] << 16 |
         (uint32_t)r->msg[r->pos + 2] << 8 | r->msg[r->pos + 3];
    r->pos += 4;
    return true;
}

static bool skip(struct reader *r, size_t n)
{
    if (r->len - r->pos < n)
        return false;
    r->pos += n;
    return true;
}

/* --- names ------------------------------------------------------------------------ */

/* Appends one label to out as sanitized text; a '.' inside a label becomes "\x2e" so the
 * dotted form stays unambiguous (text_sanitize turns a real backslash into "\\"). */
static void label_append(char *out, size_t cap, size_t *used, const uint8_t *label,
                         size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && label[i] != '.')
            continue;
        if (i > start && *used + 1 < cap)
            *used += text_sanitize(out + *used, cap - *used, (const char *)label + start,
                                   i - start);
        if (i < len && *used + 5 < cap) {
            memcpy(out + *used, "\\x2e", 5);
            *used += 4;
        }
        start = i + 1;
    }
}

/* Reads the name at r->pos. The part in place must end by `limit` (the record data's end
 * for names inside rdata); r->pos then moves past it. Pointers must point strictly before
 * the name (then before the previous target), never into the header: every loop and every
 * forward pointer is refused, and the number of hops is capped as well. Never recursive.
 * out (capacity cap, may be 0) receives the dotted text. */
static int name_read(struct reader *r, size_t limit, char *out, size_t cap)
{
    const uint8_t *msg = r->msg;
    size_t pos = r->pos, bound = limit, max_target = r->pos, after = 0;
    size_t wire = 1, used = 0;
    unsigned hops = 0;
    bool jumped = false;

    if (cap > 0)
        out[0] = '\0';
    for (;;) {
        if (pos >= bound)
            return DNS_E_TRUNCATED;
        uint8_t c = msg[pos];
        if ((c & 0xC0) == 0xC0) {
            if (bound - pos < 2)
                return DNS_E_TRUNCATED;
            size_t target = (size_t)(c & 0x3F) << 8 | msg[pos + 1];
            if (!jumped)
                after = pos + 2;
            if (target < DNS_HEADER_LEN || target >= r->len)
                return DNS_E_POINTER;
            if (target >= max_target || ++hops > DNS_POINTER_HOPS_MAX)
                return DNS_E_POINTER_LOOP;
            max_target = target;
            pos = target;
            bound = r->len;
            jumped = true;
            continue;
        }
        if (c & 0xC0)
            return DNS_E_LABEL;
        if (c == 0) {
            if (!jumped)
                after = pos + 1;
            break;
        }
        if (bound - pos - 1 < c)
            return DNS_E_TRUNCATED;
        wire += (size_t)c + 1;
        if (wire > DNS_WIRE_NAME_MAX)
            return DNS_E_NAME_TOO_LONG;
        if (cap > 0) {
            if (used > 0 && used + 1 < cap)
                out[used++] = '.';
            label_append(out, cap, &used, msg + pos + 1, c);
            out[used < cap ? used : cap - 1] = '\0';
        }
        pos += (size_t)c + 1;
    }
    if (cap > 1 && used == 0) {
        out[0] = '.';
        out[1] = '\0';
    }
    r->pos = after;
    return DNS_OK;
}

/* --- record data as text ---------------------------------------------------------- */

static int rdata_name(struct reader *r, size_t end, char *out, size_t cap)
{
    int e = name_read(r, end, out, cap);
    return e == DNS_E_TRUNCATED ? DNS_E_RDATA : e;
}

static int rdata_txt(struct reader *r, size_t end, char *out, size_t cap)
{
    char raw[DNS_TXT_KEEP];
    size_t kept = 0;
    bool cut = false;
    uint8_t n;
    while (r->pos < end && get_u8(r, &n)) {
        if (end - r->pos < n)
            return DNS_E_RDATA;
        size_t take = n < DNS_TXT_KEEP - kept ? n : DNS_TXT_KEEP - kept;
        memcpy(raw + kept, r->msg + r->pos, take);
        kept += take;
        cut |= take < n;
        skip(r, n);
    }
    size_t used = text_sanitize(out, cap, raw, kept);
    if (cut && used + 4 <= cap)
        memcpy(out + used, "...", 4);
    return DNS_OK;
}

static int rdata_tlsa(struct reader *r, size_t end, char *out, size_t cap)
{
    size_t n = end - r->pos;
    if (n < 3)
        return DNS_E_RDATA;
    const uint8_t *d = r->msg + r->pos;
    int used = snprintf(out, cap, "%u %u %u ", d[0], d[1], d[2]);
    for (size_t i = 3; i < n && i - 3 < DNS_TLSA_HEX_KEEP && used > 0 &&
                       (size_t)used + 3 < cap; i++)
        used += snprintf(out + used, cap - (size_t)used, "%02x", d[i]);
    if (n - 3 > DNS_TLSA_HEX_KEEP && used > 0 && (size_t)used + 4 <= cap)
        memcpy(out + used, "...", 4);
    r->pos = end;
    return DNS_OK;
}

/* Formats the data of a kept record type; r->pos is at the data, end is its end. */
static int rdata_format(struct reader *r, uint16_t type, size_t end, char *out, size_t cap)
{
    size_t n = end - r->pos;
    const uint8_t *d = r->msg + r->pos;
    switch (type) {
    case DNS_TYPE_A:
    case DNS_TYPE_AAAA:
        if (n != (type == DNS_TYPE_A ? 4u : 16u) || cap < INET6_ADDRSTRLEN)
            return DNS_E_RDATA;
        inet_ntop(type == DNS_TYPE_A ? AF_INET : AF_INET6, d, out, (socklen_t)cap);
        return DNS_OK;
    case DNS_TYPE_MX: {
        uint16_t pref;
        if (n < 3 || !get_u16(r, &pref))
            return DNS_E_RDATA;
        int w = snprintf(out, cap, "%u ", pref);
        return rdata_name(r, end, out + w, cap - (size_t)w);
    }
    case DNS_TYPE_CNAME:
    case DNS_TYPE_PTR:
        return rdata_name(r, end, out, cap);
    case DNS_TYPE_TXT:
        return rdata_txt(r, end, out, cap);
    case DNS_TYPE_TLSA:
        return rdata_tlsa(r, end, out, cap);
    default:
        return DNS_E_RDATA;
    }
}

/* --- records ---------------------------------------------------------------------- */

enum section { SEC_ANSWER, SEC_AUTHORITY, SEC_ADDITIONAL };

static int record_read(struct reader *r, enum section sec, struct dns_message *out)
{
    uint16_t type, rclass, rdlen;
    uint32_t ttl;
    int e = name_read(r, r->len, NULL, 0);
    if (e)
        return e;
    if (!get_u16(r, &type) || !get_u16(r, &rclass) || !get_u32(r, &ttl) ||
        !get_u16(r, &rdlen))
        return DNS_E_TRUNCATED;
    size_t start = r->pos, end = r->pos + rdlen;
    if (!skip(r, rdlen))
        return DNS_E_TRUNCATED;
    r->pos = start;

    if (sec == SEC_ADDITIONAL && type == DNS_TYPE_OPT && !out->edns) {
        /* RFC 6891 6.1.3: the TTL carries extended RCODE, version, DO flag. */
        out->edns = true;
        out->edns_udp_size = rclass;
        out->edns_version = (uint8_t)(ttl >> 16);
        out->edns_do = (ttl & 0x8000) != 0;
        out->rcode = (uint16_t)((ttl >> 24) << 4 | (out->rcode & 0x0F));
    } else if (sec == SEC_ANSWER) {
        if (dns_type_is_kept(type) && out->answer_count < DNS_ANSWERS_MAX) {
            struct dns_answer *a = &out->answers[out->answer_count];
            a->type = type;
            a->rclass = rclass;
            a->ttl = ttl;
            e = rdata_format(r, type, end, a->data, sizeof a->data);
            if (e)
                return e;
            out->answer_count++;
        } else {
            out->answers_other++;
        }
    }
    r->pos = end;
    return DNS_OK;
}

int dns_parse(const uint8_t *msg, size_t len, struct dns_message *out)
{
    if (!msg || !out)
        return DNS_E_ARGUMENT;
    memset(out, 0, sizeof *out);
    struct reader r = { msg, len, 0 };
    uint16_t flags;
    if (!get_u16(&r, &out->id) || !get_u16(&r, &flags) || !get_u16(&r, &out->qdcount) ||
        !get_u16(&r, &out->ancount) || !get_u16(&r, &out->nscount) ||
        !get_u16(&r, &out->arcount))
        return DNS_E_TRUNCATED;
    out->has_header = true;
    out->qr = flags >> 15 & 1;
    out->opcode = flags >> 11 & 0x0F;
    out->aa = flags >> 10 & 1;
    out->tc = flags >> 9 & 1;
    out->rd = flags >> 8 & 1;
    out->ra = flags >> 7 & 1;
    out->ad = flags >> 5 & 1;
    out->cd = flags >> 4 & 1;
    out->rcode = flags & 0x0F;

    for (unsigned i = 0; i < out->qdcount; i++) {
        bool first = i == 0;
        int e = first ? name_read(&r, len, out->qname, sizeof out->qname)
                      : name_read(&r, len, NULL, 0);
        if (e)
            return e;
        uint16_t qtype, qclass;
        if (!get_u16(&r, &qtype) || !get_u16(&r, &qclass))
            return DNS_E_TRUNCATED;
        if (first) {
            out->qtype = qtype;
            out->qclass = qclass;
            out->has_question = true;
        }
    }
    const struct { uint16_t count; enum section sec; } sections[] = {
        { out->ancount, SEC_ANSWER },
        { out->nscount, SEC_AUTHORITY },
        { out->arcount, SEC_ADDITIONAL },
    };
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++)
        for (unsigned i = 0; i < sections[s].count; i++) {
            int e = record_read(&r, sections[s].sec, out);
            if (e)
                return e;
        }
    return DNS_OK;
}

/* --- names for codes -------------------------------------------------------------- */

bool dns_type_is_kept(uint16_t type)
{
    switch (type) {
    case DNS_TYPE_A: case DNS_TYPE_AAAA: case DNS_TYPE_MX: case DNS_TYPE_TXT:
    case DNS_TYPE_PTR: case DNS_TYPE_TLSA: case DNS_TYPE_CNAME:
        return true;
    default:
        return false;
    }
}

const char *dns_strerror(int error)
{
    switch (error) {
    case DNS_OK: return "ok";
    case DNS_E_TRUNCATED: return "truncated";
    case DNS_E_LABEL: return "bad label type";
    case DNS_E_POINTER: return "compression pointer out of bounds";
    case DNS_E_POINTER_LOOP: return "compression pointer loop";
    case DNS_E_NAME_TOO_LONG: return "name longer than 255 octets";
    case DNS_E_RDATA: return "bad record data";
    case DNS_E_ARGUMENT: return "bad argument";
    default: return "unknown error";
    }
}

const char *dns_type_name(uint16_t type, char buf[16])
{
    static const struct { uint16_t type; const char *name; } names[] = {
        { DNS_TYPE_A, "A" }, { DNS_TYPE_NS, "NS" }, { DNS_TYPE_CNAME, "CNAME" },
        { DNS_TYPE_SOA, "SOA" }, { DNS_TYPE_PTR, "PTR" }, { DNS_TYPE_MX, "MX" },
        { DNS_TYPE_TXT, "TXT" }, { DNS_TYPE_AAAA, "AAAA" }, { DNS_TYPE_OPT, "OPT" },
        { DNS_TYPE_TLSA, "TLSA" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].type == type)
            return names[i].name;
    snprintf(buf, 16, "TYPE%u", type);
    return buf;
}

const char *dns_rcode_name(unsigned rcode, char buf[16])
{
    static const char *const names[] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
        "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
    };
    if (rcode < sizeof names / sizeof names[0])
        return names[rcode];
    if (rcode == 16)
        return "BADVERS";
    snprintf(buf, 16, "RCODE%u", rcode);
    return buf;
}

/* --- DNS over TCP ----------------------------------------------------------------- */

void dns_tcp_init(struct dns_tcp_reasm *r)
{
    r->have = 0;
    r->messages = 0;
    r->empty = 0;
}

static void deliver(struct dns_tcp_reasm *r, const uint8_t *msg, size_t len,
                    dns_tcp_message_fn fn, void *ctx, size_t *count)
{
    if (len == 0) {
        r->empty++;
        return;
    }
    r->messages++;
    (*count)++;
    fn(ctx, msg, len);
}

size_t dns_tcp_feed(struct dns_tcp_reasm *r, const uint8_t *data, size_t len,
                    dns_tcp_message_fn fn, void *ctx)
{
    size_t count = 0;
    while (len > 0) {
        if (r->have == 0 && len >= 2) {
            /* Fast path: whole messages straight from the segment. */
            size_t mlen = (size_t)data[0] << 8 | data[1];
            if (len - 2 >= mlen) {
                deliver(r, data + 2, mlen, fn, ctx, &count);
                data += 2 + mlen;
                len -= 2 + mlen;
                continue;
            }
        }
        /* Slow path: complete the prefix, then the message, in buf. */
        size_t need = 2;
        if (r->have >= 2)
            need = 2 + ((size_t)r->buf[0] << 8 | r->buf[1]);
        size_t take = need - r->have < len ? need - r->have : len;
        memcpy(r->buf + r->have, data, take);
        r->have += take;
        data += take;
        len -= take;
        if (r->have >= 2 && r->have == 2 + ((size_t)r->buf[0] << 8 | r->buf[1])) {
            deliver(r, r->buf + 2, r->have - 2, fn, ctx, &count);
            r->have = 0;
        }
    }
    return count;
}

size_t dns_tcp_pending(const struct dns_tcp_reasm *r)
{
    return r->have;
}
