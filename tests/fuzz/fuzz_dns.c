/* fuzz_dns.c — libFuzzer target for protocols/dns.c, dnstrack.c and dnswatch.c (with
 * dns_watch_name_of() asked for every address the input answers).
 *
 * Each input is used three ways:
 *  1. As one DNS message (a UDP payload): dns_parse, checking the result code, the decoded
 *     text (NUL-terminated, sanitized), the answer count, and that a second parse agrees.
 *  2. As a DNS-over-TCP byte stream through the dns_tcp reassembler: fed whole, split once
 *     at a position taken from the input's last two bytes, and byte by byte. All three must
 *     deliver the same messages (length and bytes) as a reference walk over the length
 *     prefixes, and leave the same bytes pending.
 *  3. The message of (1) and the messages of (2) through a dns_watch (the rows it hands
 *     over must pass the session invariants of fuzz_check.c and carry a DNS status) and a
 *     small dnstrack (capacity 4: evictions) whose lookups and MX verdicts are checked.
 *     Bits of each message's id pick the clock step, the client port and address family,
 *     and whether a response gets a synthesized query (the same bytes with QR cleared),
 *     a retransmitted query, a duplicate, or an inbound SMTP session at the queried
 *     domain (to link a dns_failed row). The whole stream also goes through a
 *     dns_watch_stream, both directions. One dns_watch serves all inputs (see
 *     run_watch); the dnstrack is made anew for each.
 */
#include "fuzz_check.h"
#include "protocols/dns.h"
#include "protocols/dnstrack.h"
#include "protocols/dnswatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DNS_TIMEOUT_US (10LL * 1000000)

/* ---- 1. dns_parse ------------------------------------------------------------------- */

static void check_message(const struct dns_message *m, int rc, const char *what)
{
    if (rc > 0 || rc < DNS_E_ARGUMENT)
        fuzz_fail("%s: dns_parse returned %d", what, rc);
    if (rc == DNS_OK && !m->has_header)
        fuzz_fail("%s: parsed without a header", what);
    if (m->has_question && !m->has_header)
        fuzz_fail("%s: a question without a header", what);
    if (m->has_question && m->qdcount == 0)
        fuzz_fail("%s: a question with qdcount 0", what);
    /* Even without has_question: a first name cut short stays NUL-terminated text. */
    fuzz_check_string("dns qname", m->qname, sizeof m->qname);
    if (m->answer_count > DNS_ANSWERS_MAX || m->answer_count > m->ancount)
        fuzz_fail("%s: %u answers kept (ancount %u)", what, m->answer_count, m->ancount);
    if (m->answer_count + m->answers_other > m->ancount)
        fuzz_fail("%s: %u + %u answers of %u", what, m->answer_count, m->answers_other,
                  m->ancount);
    if (!m->edns && m->rcode > 15)
        fuzz_fail("%s: rcode %u without EDNS", what, m->rcode);
    if (m->rcode > 0xfff)
        fuzz_fail("%s: rcode %u over 12 bits", what, m->rcode);
    for (unsigned i = 0; i < m->answer_count && i < DNS_ANSWERS_MAX; i++) {
        const struct dns_answer *a = &m->answers[i];
        if (!dns_type_is_kept(a->type))
            fuzz_fail("%s: answer %u of a type not kept (%u)", what, i, a->type);
        fuzz_check_string("dns answer", a->data, sizeof a->data);
    }
    if (!dns_strerror(rc))
        fuzz_fail("%s: no text for error %d", what, rc);
    char buf[16];
    const char *name = dns_type_name(m->qtype, buf);
    if (!name || strlen(name) >= 16)
        fuzz_fail("dns_type_name(%u)", m->qtype);
    name = dns_rcode_name(m->rcode, buf);
    if (!name || strlen(name) >= 16)
        fuzz_fail("dns_rcode_name(%u)", m->rcode);
}

static struct dns_message parsed_a, parsed_b;

static void parse_whole(const uint8_t *data, size_t size)
{
    int rc = dns_parse(data, size, &parsed_a);
    check_message(&parsed_a, rc, "the input as one message");
    int again = dns_parse(data, size, &parsed_b);
    if (again != rc || memcmp(&parsed_a, &parsed_b, sizeof parsed_a) != 0)
        fuzz_fail("dns_parse gave %d, then %d (or other fields) on the same bytes", rc, again);
}

/* ---- 2. DNS over TCP ---------------------------------------------------------------- */

struct msg_log {
    uint8_t *bytes;
    size_t len, cap;
    size_t count;       /* messages */
    size_t in_call;     /* messages delivered during the current dns_tcp_feed */
};

static void log_add(struct msg_log *log, const void *bytes, size_t len)
{
    if (log->len + len > log->cap) {
        size_t cap = log->cap ? log->cap : 4096;
        while (cap < log->len + len)
            cap *= 2;
        uint8_t *grown = realloc(log->bytes, cap);
        if (!grown)
            abort();
        log->bytes = grown;
        log->cap = cap;
    }
    memcpy(log->bytes + log->len, bytes, len);
    log->len += len;
}

static void log_message(struct msg_log *log, const uint8_t *msg, size_t len)
{
    uint8_t prefix[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len };
    log_add(log, prefix, sizeof prefix);
    log_add(log, msg, len);
    log->count++;
}

static void on_tcp_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct msg_log *log = ctx;
    if (len == 0 || len > 65535)
        fuzz_fail("dns_tcp delivered a message of %zu bytes", len);
    if (!msg)
        fuzz_fail("dns_tcp delivered a NULL message");
    log_message(log, msg, len);
    log->in_call++;
}

static struct dns_tcp_reasm reasm;   /* ~64 KiB: not on the stack */

static void tcp_feed(struct msg_log *log, const uint8_t *bytes, size_t len)
{
    log->in_call = 0;
    size_t n = dns_tcp_feed(&reasm, bytes, len, on_tcp_message, log);
    if (n != log->in_call)
        fuzz_fail("dns_tcp_feed returned %zu, delivered %zu", n, log->in_call);
    if (dns_tcp_pending(&reasm) >= DNS_TCP_BUF_MAX)
        fuzz_fail("dns_tcp: %zu bytes pending", dns_tcp_pending(&reasm));
}

struct tcp_result {
    struct msg_log log;
    size_t pending;
    uint64_t messages, empty;
};

/* piece 0: stream[0..split) then the rest; else pieces of `piece` bytes. */
static struct tcp_result tcp_run(const uint8_t *stream, size_t len, size_t split, size_t piece)
{
    struct tcp_result res = { 0 };
    dns_tcp_init(&reasm);
    if (piece == 0) {
        tcp_feed(&res.log, stream, split);
        tcp_feed(&res.log, stream + split, len - split);
    } else {
        for (size_t i = 0; i < len; i += piece)
            tcp_feed(&res.log, stream + i, len - i < piece ? len - i : piece);
    }
    res.pending = dns_tcp_pending(&reasm);
    res.messages = reasm.messages;
    res.empty = reasm.empty;
    if (res.messages != res.log.count)
        fuzz_fail("dns_tcp counts %llu messages, delivered %zu",
                  (unsigned long long)res.messages, res.log.count);
    return res;
}

/* What the stream holds, by walking its length prefixes. */
static struct tcp_result tcp_reference(const uint8_t *stream, size_t len)
{
    struct tcp_result res = { 0 };
    size_t p = 0;
    while (len - p >= 2) {
        size_t mlen = (size_t)stream[p] << 8 | stream[p + 1];
        if (len - p - 2 < mlen)
            break;
        if (mlen == 0)
            res.empty++;
        else
            log_message(&res.log, stream + p + 2, mlen);
        p += 2 + mlen;
    }
    res.pending = len - p;
    res.messages = res.log.count;
    return res;
}

static void tcp_compare(const struct tcp_result *want, const struct tcp_result *got,
                        const char *how)
{
    if (want->log.len != got->log.len ||
        (want->log.len && memcmp(want->log.bytes, got->log.bytes, want->log.len) != 0)) {
        size_t at = 0;
        while (at < want->log.len && at < got->log.len &&
               want->log.bytes[at] == got->log.bytes[at])
            at++;
        fuzz_fail("dns_tcp fed %s: %zu messages (log %zu bytes), expected %zu (log %zu "
                  "bytes); they differ at log byte %zu", how, got->log.count, got->log.len,
                  want->log.count, want->log.len, at);
    }
    if (want->pending != got->pending || want->empty != got->empty)
        fuzz_fail("dns_tcp fed %s: %zu pending, %llu empty; expected %zu, %llu", how,
                  got->pending, (unsigned long long)got->empty, want->pending,
                  (unsigned long long)want->empty);
}

/* ---- 3. dnstrack and dnswatch -------------------------------------------------------- */

struct harness {
    struct dns_watch *watch;
    struct dnstrack *track;
    int64_t now;
    uint64_t rows, lookups, mx_failed;
};

static void check_detail(const char *what, const char *detail, size_t cap)
{
    fuzz_check_string(what, detail, cap);
    if (detail[0] == '\0')
        fuzz_fail("%s: empty", what);
}

static void on_lookup(void *ctx, const struct dns_lookup *l)
{
    struct harness *h = ctx;
    h->lookups++;
    fuzz_check_string("lookup qname", l->qname, sizeof l->qname);
    fuzz_check_string("lookup answers", l->answers, sizeof l->answers);
    if (!dns_type_is_kept(l->qtype))
        fuzz_fail("lookup of a type not kept: %u", l->qtype);
    switch (l->status) {
    case DNS_LOOKUP_ANSWERED:
        if (l->rcode < 0 || l->rcode > 0xfff || l->response_us < 0)
            fuzz_fail("answered lookup: rcode %d, response %lld us", l->rcode,
                      (long long)l->response_us);
        if (l->evicted || l->at_end)
            fuzz_fail("answered lookup marked evicted %d / at_end %d", l->evicted, l->at_end);
        break;
    case DNS_LOOKUP_TIMEOUT:
        if (l->rcode != -1 || l->response_us != -1)
            fuzz_fail("timed-out lookup: rcode %d, response %lld us", l->rcode,
                      (long long)l->response_us);
        break;
    default:
        fuzz_fail("lookup status %d", (int)l->status);
    }
    if (l->null_mx && !l->has_mx)
        fuzz_fail("null MX without MX answers");
    char detail[DNS_DETAIL_MAX];
    detail[0] = '\0';
    enum dns_mx_verdict v = dns_mx_classify(l, detail, sizeof detail);
    if ((int)v < DNS_MX_NOT_MX || v > DNS_MX_NODATA)
        fuzz_fail("dns_mx_classify: verdict %d", (int)v);
    if ((v == DNS_MX_NOT_MX) != (l->qtype != DNS_TYPE_MX))
        fuzz_fail("dns_mx_classify: verdict %d for type %u", (int)v, l->qtype);
    if (v == DNS_MX_FAILED)
        check_detail("dns_mx_classify detail", detail, sizeof detail);
    detail[0] = '\0';
    bool failed = dns_lookup_failed_mx(l, detail, sizeof detail);
    if (failed != (v == DNS_MX_FAILED))
        fuzz_fail("dns_lookup_failed_mx %d, verdict %d", failed, (int)v);
    if (failed)
        check_detail("dns_lookup_failed_mx detail", detail, sizeof detail);
    detail[0] = '\0';
    if (dns_fallback_failed(l, detail, sizeof detail))
        check_detail("dns_fallback_failed detail", detail, sizeof detail);
}

static void on_mx_failed(void *ctx, const struct dns_lookup *mx, const char *detail)
{
    struct harness *h = ctx;
    h->mx_failed++;
    if (mx->qtype != DNS_TYPE_MX)
        fuzz_fail("on_mx_failed for a lookup of type %u", mx->qtype);
    fuzz_check_string("mx_failed qname", mx->qname, sizeof mx->qname);
    size_t len = strnlen(detail, DNS_DETAIL_MAX);
    if (len == DNS_DETAIL_MAX)
        fuzz_fail("on_mx_failed: detail not NUL-terminated within %d bytes", DNS_DETAIL_MAX);
    check_detail("on_mx_failed detail", detail, len + 1);
}

static void on_row(void *ctx, struct mt_session *row)
{
    struct harness *h = ctx;
    h->rows++;
    fuzz_check_dns_row(row);
    session_free(row);
}

static void make_flow(struct flow *f, uint16_t id)
{
    memset(f, 0, sizeof *f);
    if (id & 0x4000) {
        f->client.family = f->server.family = 6;
        memcpy(f->client.bytes, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
        memcpy(f->server.bytes, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x35", 16);
    } else {
        f->client.family = f->server.family = 4;
        memcpy(f->client.bytes, "\xc0\x00\x02\x01", 4);
        memcpy(f->server.bytes, "\xc0\x00\x02\x35", 4);
    }
    f->client_port = (uint16_t)(40000 + (id >> 8 & 1));
    f->server_port = 53;
}

/* An accepted inbound recipient at the queried domain: links a dns_failed row. */
static void inbound_at(struct harness *h, const char *domain)
{
    struct mt_session *s = session_new(MT_PROTO_SMTP);
    if (!s)
        return;
    s->direction = MT_INBOUND;
    s->start_us = s->end_us = h->now;
    struct mt_message *m = session_add_message(s);
    struct mt_recipient *r = session_add_recipient(s);
    if (m && r) {
        session_text_setf(&m->mail_from, MT_MSG_MAIL_FROM_MAX, "sender@example.org");
        session_text_setf(&r->addr, MT_RCPT_ADDR_MAX, "user@%.300s", domain);
        r->accepted = true;
        r->message = 0;
        size_t announced = 0;
        dns_watch_inbound(h->watch, s, &announced, true, s->end_us);
    }
    session_free(s);
}

static uint8_t flipped[65536];

static void one_side(struct harness *h, const struct flow *flow, bool from_client,
                     const uint8_t *msg, size_t len, const struct dns_message *m)
{
    dns_watch_datagram(h->watch, flow, from_client, msg, len, h->now);
    if (from_client)
        dnstrack_query(h->track, m, flow, h->now);
    else
        dnstrack_response(h->track, m, flow, h->now);
}

/* One message into the watch and the tracker (see the top of the file for the id bits). */
static void feed_message(struct harness *h, const uint8_t *msg, size_t len)
{
    struct dns_message m, q;
    int rc = dns_parse(msg, len, &m);
    check_message(&m, rc, "a message");
    if (!m.has_header) {
        struct flow flow;
        make_flow(&flow, 0);
        dns_watch_datagram(h->watch, &flow, true, msg, len, h->now);
        return;
    }
    uint16_t id = m.id;
    h->now += (int64_t)(id & 0x0f) * 1000000 + (int64_t)(id >> 4 & 0x0f) * 1000;
    dns_watch_tick(h->watch, h->now);
    dnstrack_expire(h->track, h->now, FUZZ_DNS_TIMEOUT_US);
    struct flow flow;
    make_flow(&flow, id);
    if (!m.qr) {
        one_side(h, &flow, true, msg, len, &m);
        if (id & 0x0800)
            one_side(h, &flow, true, msg, len, &m);   /* retransmission */
        return;
    }
    if (!(id & 0x0200) && len <= sizeof flipped && len >= 3) {
        memcpy(flipped, msg, len);
        flipped[2] &= 0x7f;                          /* QR 0: the query for it */
        dns_parse(flipped, len, &q);
        one_side(h, &flow, true, flipped, len, &q);
        if (id & 0x0800)
            one_side(h, &flow, true, flipped, len, &q);
        h->now += (int64_t)(id >> 12 & 3) * 1000;
    }
    if ((id & 0x1000) && !(id & 0x2000) && m.has_question)
        inbound_at(h, m.qname);
    one_side(h, &flow, false, msg, len, &m);
    if (id & 0x0400)
        one_side(h, &flow, false, msg, len, &m);     /* duplicate response */
    if ((id & 0x1000) && (id & 0x2000) && m.has_question)
        inbound_at(h, m.qname);
}

/* dns_watch_new allocates ~10 MB (a 4096-entry table), which would take most of the
 * time of a run: one watch serves every input. dns_watch_finish at the end of each input
 * empties its table and hands over every pending row; what stays is the ring of recent
 * inbound recipients, and each input's clock starts a day after the previous one ended,
 * far outside the 60 s linking window, so no input sees another's recipients. */
static struct dns_watch *shared_watch;
static int64_t clock_base = 1700000000LL * 1000000;

static void run_watch(const uint8_t *data, size_t size, const struct msg_log *messages,
                      size_t split)
{
    static struct harness h;
    memset(&h, 0, sizeof h);
    h.now = clock_base;
    if (!shared_watch)
        shared_watch = dns_watch_new(on_row, &h);
    h.watch = shared_watch;
    struct dnstrack_config config = { .capacity = 4, .mx_wait_capacity = 2,
                                      .on_lookup = on_lookup, .on_mx_failed = on_mx_failed,
                                      .ctx = &h };
    h.track = dnstrack_new(&config);
    if (!h.watch || !h.track)
        abort();

    feed_message(&h, data, size);
    for (size_t p = 0; p + 4 <= messages->len;) {
        const uint8_t *b = messages->bytes + p;
        size_t len = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
        feed_message(&h, b + 4, len);
        p += 4 + len;
    }

    /* The stream through dnswatch's own reassembly, split as above, both directions. */
    struct flow flow;
    make_flow(&flow, 0);
    struct dns_watch_stream *stream = dns_watch_stream_new(&flow);
    if (!stream)
        abort();
    for (int side = 0; side < 2; side++) {
        dns_watch_stream_data(h.watch, stream, side == 0, data, split, h.now);
        dns_watch_stream_data(h.watch, stream, side == 0, data + split, size - split, h.now);
        h.now += 1000;
    }
    dns_watch_stream_free(stream);

    const struct dnstrack_stats *st = dnstrack_stats(h.track);
    if (st->lookups > st->queries)
        fuzz_fail("dnstrack: %llu lookups from %llu queries", (unsigned long long)st->lookups,
                  (unsigned long long)st->queries);
    dnstrack_flush(h.track);
    st = dnstrack_stats(h.track);
    if (st->lookups != h.lookups)
        fuzz_fail("dnstrack: stats say %llu lookups, on_lookup saw %llu",
                  (unsigned long long)st->lookups, (unsigned long long)h.lookups);
    if (st->mx_failed != h.mx_failed)
        fuzz_fail("dnstrack: stats say %llu failed MX, on_mx_failed saw %llu",
                  (unsigned long long)st->mx_failed, (unsigned long long)h.mx_failed);
    /* Which name each answered address stands for (dns_watch_name_of()): bounded text. */
    static const char *const clients[] = { "192.0.2.1", "2001:db8::1" };
    for (unsigned i = 0; i < parsed_a.answer_count && i < DNS_ANSWERS_MAX; i++)
        for (size_t c = 0; c < 2; c++) {
            char name[MT_NAME_MAX], mx_of[MT_NAME_MAX];
            if (dns_watch_name_of(h.watch, clients[c], parsed_a.answers[i].data, h.now, name,
                                  sizeof name, mx_of, sizeof mx_of)) {
                fuzz_check_string("looked-up name", name, sizeof name);
                fuzz_check_string("MX domain", mx_of, sizeof mx_of);
                if (!name[0])
                    fuzz_fail("an address named by an empty name");
            }
        }
    dns_watch_finish(h.watch, h.now + 120LL * 1000000);
    dnstrack_free(h.track);
    clock_base = h.now + 86400LL * 1000000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_whole(data, size);

    size_t split = size >= 2 ? ((size_t)data[size - 2] << 8 | data[size - 1]) % (size + 1) : 0;
    struct tcp_result want = tcp_reference(data, size);
    struct tcp_result whole = tcp_run(data, size, size, 0);
    tcp_compare(&want, &whole, "whole");
    struct tcp_result split_once = tcp_run(data, size, split, 0);
    tcp_compare(&want, &split_once, "split once");
    struct tcp_result bytewise = tcp_run(data, size, 0, 1);
    tcp_compare(&want, &bytewise, "byte by byte");

    run_watch(data, size, &whole.log, split);

    free(want.log.bytes);
    free(whole.log.bytes);
    free(split_once.log.bytes);
    free(bytewise.log.bytes);
    return 0;
}
