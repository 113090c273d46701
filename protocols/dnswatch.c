/* dnswatch.c — DNS lookups to rows, failed MX lookups to linked dns_failed rows. */
#include "protocols/dnswatch.h"

#include "protocols/dns.h"
#include "protocols/dnstrack.h"
#include "protocols/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A resolver retries after about 5 s: a query unanswered for 10 s has timed out. */
#define DNS_TIMEOUT_US (10LL * 1000000)
/* How long a failed MX lookup waits for the inbound message that caused it: Postfix
 * looks the domain up right after queuing, while the inbound session may still be open. */
#define LINK_WINDOW_US (60LL * 1000000)
#define PENDING_MAX 256
/* Mail servers seen receiving or sending mail: only they deliver, so only their unlinked
 * MX failures are delivery failures (a workstation's `dig mx` is not). */
#define MTAS_MAX 64
/* Answers remembered for the mail sessions that follow them (dns_watch_name_of()): a
 * resolver's cache keeps an answer for its TTL, often an hour, during which the client
 * connects again without asking. */
#define NAMED_MAX 256
#define MX_NAMED_MAX 128
#define NAMED_WINDOW_US (3600LL * 1000000)

/* What a client was given: an address for a host name (A/AAAA: value the address, name
 * the host), or a host as a domain's mail exchanger (MX: value the host, name the domain). */
struct named {
    char client[MT_IP_MAX];
    char value[MT_NAME_MAX];   /* the address (A/AAAA), the host (MX) */
    char name[MT_NAME_MAX];    /* the name asked for */
    int64_t ts_us;
};
struct named_ring {
    struct named *slots;
    size_t cap, count, next;
};

struct pending_failure {
    struct mt_session *row;
    char domain[MT_NAME_MAX];
    int64_t deadline_us;
};

struct dns_watch {
    dns_watch_row_fn row;
    void *ctx;
    struct dnstrack *track;
    struct recent_rcpts *recent;
    struct recent_rcpts *senders;   /* recent inbound senders: lookups that check them */
    char mtas[MTAS_MAX][MT_IP_MAX];
    size_t mta_count, mta_next;
    struct pending_failure pending[PENDING_MAX];
    size_t pending_count;
    struct named_ring addresses;    /* A/AAAA answers: value an address, name the host */
    struct named_ring exchangers;   /* MX answers: value a host, name the domain */
    int64_t now_us;
};

struct dns_watch_stream {
    struct flow flow;
    struct dns_tcp_reasm reasm[2];
};

static void fill_endpoints(struct mt_session *row, const struct flow *flow)
{
    ip_address_format(&flow->client, row->client_ip, sizeof row->client_ip);
    ip_address_format(&flow->server, row->server_ip, sizeof row->server_ip);
    row->client_port = flow->client_port;
    row->server_port = flow->server_port;
}

/* The name starts with a reversed address: four decimal labels (IPv4) or 32 one-digit hex
 * labels (IPv6), then a zone of at least two labels: how DNS blocklists are asked. */
static bool reversed_address_name(const char *name)
{
    int labels = 0, ipv4 = 0, nibbles = 0;
    bool v4_ok = true, v6_ok = true;
    for (const char *p = name; *p; ) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (labels < 4) {
            bool digits = len >= 1 && len <= 3 && strspn(p, "0123456789") >= len;
            v4_ok = v4_ok && digits && (len < 3 || strncmp(p, "255", 3) <= 0);
            ipv4 += v4_ok;
        }
        if (labels < 32) {
            v6_ok = v6_ok && len == 1 && strchr("0123456789abcdefABCDEF", *p);
            nibbles += v6_ok;
        }
        labels++;
        if (!dot)
            break;
        p = dot + 1;
    }
    return (ipv4 == 4 && labels >= 6) || (nibbles == 32 && labels >= 34);
}

/* A "no" that is an answer: a reverse lookup's NXDOMAIN (no PTR record) and a DNS
 * blocklist's (not listed). An inbound mail server asks both for every connection: as
 * failures they buried the real ones. NULL for any other lookup. */
static const char *negative_answer(const struct dns_lookup *lookup)
{
    if (lookup->status == DNS_LOOKUP_TIMEOUT || lookup->rcode != DNS_RCODE_NXDOMAIN)
        return NULL;
    if (lookup->qtype == DNS_TYPE_PTR)
        return "no PTR record (NXDOMAIN)";
    if ((lookup->qtype == DNS_TYPE_A || lookup->qtype == DNS_TYPE_TXT) &&
        reversed_address_name(lookup->qname))
        return "not listed (NXDOMAIN: a blocklist's no)";
    return NULL;
}

/* A query the end of the capture cut short of the resolver's timeout: unanswered, not
 * known to have failed (the answer may have come a moment later). */
static bool cut_by_end(const struct dns_watch *watch, const struct dns_lookup *lookup)
{
    return lookup->status == DNS_LOOKUP_TIMEOUT && lookup->at_end &&
           watch->now_us - lookup->ts_us < DNS_TIMEOUT_US;
}

static void named_add(struct named_ring *ring, const char *client, const char *value,
                      size_t value_len, const char *name, int64_t ts_us)
{
    if (!ring->slots || value_len == 0 || value_len >= MT_NAME_MAX)
        return;
    struct named *n = &ring->slots[ring->next];
    snprintf(n->client, sizeof n->client, "%s", client);
    memcpy(n->value, value, value_len);
    n->value[value_len] = '\0';
    snprintf(n->name, sizeof n->name, "%s", name);
    n->ts_us = ts_us;
    ring->next = (ring->next + 1) % ring->cap;
    if (ring->count < ring->cap)
        ring->count++;
}

/* The latest entry of the client for value (case-folded: host names) within the window. */
static const struct named *named_find(const struct named_ring *ring, const char *client,
                                      const char *value, int64_t ts_us)
{
    for (size_t k = 1; k <= ring->count; k++) {
        const struct named *n = &ring->slots[(ring->next + ring->cap - k) % ring->cap];
        if (n->ts_us <= ts_us && ts_us - n->ts_us <= NAMED_WINDOW_US &&
            strcmp(n->client, client) == 0 && strcasecmp(n->value, value) == 0)
            return n;
    }
    return NULL;
}

/* Remembers what an answered A, AAAA or MX lookup gave its client: each address, or each
 * exchanger ("10 mx1.example.com"; "0 ." is no exchanger). Names lose a final dot. */
static void remember_answers(struct dns_watch *watch, const struct dns_lookup *lookup)
{
    bool mx = lookup->qtype == DNS_TYPE_MX;
    if (lookup->status != DNS_LOOKUP_ANSWERED || lookup->rcode != 0 ||
        (!mx && !lookup->has_address) || (mx && (!lookup->has_mx || lookup->null_mx)))
        return;
    char client[MT_IP_MAX], name[MT_NAME_MAX];
    size_t name_len = strlen(lookup->qname);
    if (name_len == 0 || name_len >= sizeof name)
        return;   /* the root; longer than a host name can be: escapes of strange bytes */
    memcpy(name, lookup->qname, name_len + 1);
    ip_address_format(&lookup->flow.client, client, sizeof client);
    if (name_len > 1 && name[name_len - 1] == '.')
        name[name_len - 1] = '\0';
    for (const char *item = lookup->answers; *item;) {
        size_t len = strcspn(item, ",");
        const char *value = item;
        size_t value_len = len;
        if (mx) {   /* "10 host": the host after the preference */
            const char *space = memchr(item, ' ', len);
            value = space ? space + 1 : item + len;
            value_len = (size_t)(item + len - value);
            if (value_len > 1 && value[value_len - 1] == '.')
                value_len--;
        }
        bool address = !mx && value_len > 0 && value_len < MT_IP_MAX &&
                       strspn(value, "0123456789abcdefABCDEF:.") >= value_len;
        if (mx || address)
            named_add(mx ? &watch->exchangers : &watch->addresses, client, value, value_len,
                      name, lookup->ts_us + (lookup->response_us > 0 ? lookup->response_us : 0));
        item += len;
        if (*item == ',')
            item++;
    }
}

bool dns_watch_name_of(const struct dns_watch *watch, const char *client_ip,
                       const char *server_ip, int64_t ts_us, char *name, size_t name_cap,
                       char *mx_of, size_t mx_cap)
{
    const struct named *address = named_find(&watch->addresses, client_ip, server_ip, ts_us);
    if (!address)
        return false;
    const struct named *exchanger = named_find(&watch->exchangers, client_ip, address->name,
                                               ts_us);
    snprintf(name, name_cap, "%s", address->name);
    snprintf(mx_of, mx_cap, "%s", exchanger ? exchanger->name : "");
    return true;
}

static void on_lookup(void *ctx, const struct dns_lookup *lookup)
{
    struct dns_watch *watch = ctx;
    remember_answers(watch, lookup);
    struct mt_session *row = session_new(MT_PROTO_DNS);
    struct mt_dns_info *dns = row ? session_dns_alloc(row) : NULL;
    if (!dns) {   /* out of memory: a row without its lookup would say nothing */
        session_free(row);
        return;
    }
    char type[16], rcode[16];
    fill_endpoints(row, &lookup->flow);
    row->direction = MT_OUTBOUND;
    row->start_us = lookup->ts_us;
    row->end_us = lookup->response_us >= 0 ? lookup->ts_us + lookup->response_us : lookup->ts_us;
    row->end = lookup->status == DNS_LOOKUP_TIMEOUT ? MT_END_TIMEOUT : MT_END_CLOSE;
    /* lookup->qname is sanitized text up to DNS_NAME_MAX: cut it between characters */
    size_t qlen = text_utf8_cut(lookup->qname, strlen(lookup->qname), sizeof dns->qname - 1);
    memcpy(dns->qname, lookup->qname, qlen);
    dns->qname[qlen] = '\0';
    snprintf(dns->qtype, sizeof dns->qtype, "%s", dns_type_name(lookup->qtype, type));
    if (lookup->rcode >= 0)
        snprintf(dns->rcode, sizeof dns->rcode, "%s", dns_rcode_name((unsigned)lookup->rcode, rcode));
    text_sanitize(dns->answers, sizeof dns->answers, lookup->answers, strlen(lookup->answers));
    dns->response_us = lookup->response_us;
    char line[MT_TEXT_MAX];
    enum mt_status status;
    if (cut_by_end(watch, lookup)) {
        status = MT_STATUS_INCOMPLETE;
        snprintf(line, sizeof line, "%s %.200s: no response seen: the capture ended %.1f s "
                 "after the query", dns->qtype, dns->qname,
                 (double)(watch->now_us - lookup->ts_us) / 1e6);
    } else if (lookup->status == DNS_LOOKUP_TIMEOUT) {
        status = MT_STATUS_TIMEOUT;
        snprintf(line, sizeof line, "%s %.200s: no response%s", dns->qtype, dns->qname,
                 lookup->at_end ? " before the capture ended" : "");
    } else if (lookup->rcode == 0 && lookup->ancount > 0) {
        status = MT_STATUS_RESOLVED;
        snprintf(line, sizeof line, "%s %.200s: %.250s", dns->qtype, dns->qname, dns->answers);
    } else if (lookup->tc && lookup->rcode == 0 && lookup->ancount == 0) {
        /* Too big for UDP: the resolver asks again over TCP, whose lookup is its own row.
         * Not "no data": the data is there, in the other row. */
        status = MT_STATUS_RESOLVED;
        snprintf(line, sizeof line, "%s %.200s: answer too big for UDP (truncated): asked "
                 "again over TCP", dns->qtype, dns->qname);
    } else if (negative_answer(lookup)) {
        status = MT_STATUS_NO_DATA;
        snprintf(line, sizeof line, "%s %.200s: %s", dns->qtype, dns->qname,
                 negative_answer(lookup));
    } else if (lookup->rcode == 0) {
        /* NODATA is an answer, not a failure: an IPv4-only host's AAAA looks like this, and
         * counting it as one put a false failure beside every delivery. dnstrack decides
         * separately whether an MX lookup left mail undeliverable. */
        status = MT_STATUS_NO_DATA;
        snprintf(line, sizeof line, "%s %.200s: no data", dns->qtype, dns->qname);
    } else {
        status = MT_STATUS_DNS_ERROR;
        snprintf(line, sizeof line, "%s %.200s: %s", dns->qtype, dns->qname, dns->rcode);
    }
    int index = session_transcript_add(row, row->start_us, 'I', line, strlen(line));
    session_decide(row, status, line, strlen(line), index);
    watch->row(watch->ctx, row);   /* the callback owns it now */
}

/* Fills the sender, recipient and Message-ID (so that `trace` by Message-ID shows the
 * failure) of a dns_failed row from the inbound message. */
static void link_row(struct mt_session *row, const char *sender, const char *recipient,
                     const char *message_id)
{
    session_text_set(&row->messages[0].mail_from, MT_MSG_MAIL_FROM_MAX, sender, strlen(sender));
    session_text_set(&row->messages[0].message_id, MT_MSG_MESSAGE_ID_MAX, message_id,
                     strlen(message_id));
    session_text_set(&row->recipients[0].addr, MT_RCPT_ADDR_MAX, recipient, strlen(recipient));
    session_transcript_addf(row, row->start_us, 'I', "[for the message from <%.200s> to <%.200s>]",
                            sender, recipient);
}

static bool known_mta(const struct dns_watch *watch, const char *ip)
{
    for (size_t i = 0; i < watch->mta_count; i++)
        if (strcmp(watch->mtas[i], ip) == 0)
            return true;
    return false;
}

/* A mail server: an inbound session's server, or an outbound one's client (a relay whose
 * submissions are not in the capture). */
static void note_mta(struct dns_watch *watch, const char *ip)
{
    if (!ip[0] || known_mta(watch, ip))
        return;
    snprintf(watch->mtas[watch->mta_next], MT_IP_MAX, "%s", ip);
    watch->mta_next = (watch->mta_next + 1) % MTAS_MAX;
    if (watch->mta_count < MTAS_MAX)
        watch->mta_count++;
}

/* A failed MX lookup linked to no accepted message is a delivery failure only when a mail
 * server asked, and not for the domain of a sender it was receiving from (Postfix's
 * reject_unknown_sender_domain, a spam filter: a check, no delivery). Otherwise the lookup
 * stays what it was, a DNS row. */
static bool delivery_failure(const struct dns_watch *watch, const struct pending_failure *p,
                             int64_t now_us)
{
    return known_mta(watch, p->row->client_ip) &&
           !recent_rcpt_find(watch->senders, p->domain, now_us, 2 * LINK_WINDOW_US);
}

/* linked: the failure was tied to a message (always a row). */
static void release_pending(struct dns_watch *watch, size_t index, bool linked)
{
    struct mt_session *row = watch->pending[index].row;
    if (linked || delivery_failure(watch, &watch->pending[index], watch->now_us))
        watch->row(watch->ctx, row);   /* the callback owns it now */
    else
        session_free(row);
    watch->pending[index] = watch->pending[--watch->pending_count];
}

static void on_mx_failed(void *ctx, const struct dns_lookup *mx, const char *detail)
{
    struct dns_watch *watch = ctx;
    char hedged[MT_TEXT_MAX];
    /* An MX query the capture's end cut within the resolver's timeout was not seen failing
     * (the answer may be in the next file; or the resolver gave up unseen, an ICMP error
     * the capture filter left out): the attempt is shown, incomplete, and no failure. */
    bool cut = cut_by_end(watch, mx);
    if (cut) {
        snprintf(hedged, sizeof hedged, "no answer to the MX lookup when the capture ended"
                 " (if none came: %s)", detail);
        detail = hedged;
    }
    enum mt_status verdict = cut ? MT_STATUS_INCOMPLETE : MT_STATUS_DNS_FAILED;
    struct mt_session *row = session_new(MT_PROTO_SMTP);
    if (!row)
        return;
    /* The mail server that asked is the client of the delivery that could not start;
     * there is no SMTP server to name. */
    ip_address_format(&mx->flow.client, row->client_ip, sizeof row->client_ip);
    row->server_port = 25;
    row->direction = MT_OUTBOUND;
    row->start_us = row->end_us = mx->ts_us;
    row->end = MT_END_UNANSWERED;
    struct mt_message *message = session_add_message(row);
    struct mt_recipient *recipient = session_add_recipient(row);
    if (!message || !recipient) {
        session_free(row);
        return;
    }
    recipient->message = 0;
    session_text_set(&recipient->addr, MT_RCPT_ADDR_MAX, mx->qname, strlen(mx->qname));
    session_text_set(&recipient->reply, MT_RCPT_REPLY_MAX, detail, strlen(detail));
    message->status = verdict;
    message->start_us = mx->ts_us;
    session_text_set(&message->reply, MT_MSG_REPLY_MAX, detail, strlen(detail));
    int index = session_transcript_add(row, mx->ts_us, 'I', detail, strlen(detail));
    session_decide(row, verdict, detail, strlen(detail), index);
    /* The verdict comes now (the response, or a timeout: maybe long after the query when
     * the capture went quiet). A message accepted within a minute of the query explains
     * it: before it, or just after (the relay may ask before its 250 reaches the client). */
    int64_t now = watch->now_us > mx->ts_us ? watch->now_us : mx->ts_us;
    int64_t until = now < mx->ts_us + LINK_WINDOW_US ? now : mx->ts_us + LINK_WINDOW_US;
    const struct recent_rcpt *recent = recent_rcpt_find(watch->recent, mx->qname, until,
                                                        until - (mx->ts_us - LINK_WINDOW_US));
    if (recent) {
        link_row(row, recent->sender, recent->recipient, recent->message_id);
        watch->row(watch->ctx, row);   /* the callback owns it now */
        return;
    }
    if (watch->pending_count == PENDING_MAX)
        release_pending(watch, 0, false);
    struct pending_failure *pending = &watch->pending[watch->pending_count++];
    pending->row = row;
    size_t dlen = text_utf8_cut(mx->qname, strlen(mx->qname), sizeof pending->domain - 1);
    memcpy(pending->domain, mx->qname, dlen);   /* for matching only: a cut name matches nothing */
    pending->domain[dlen] = '\0';
    pending->deadline_us = mx->ts_us + LINK_WINDOW_US;
}

struct dns_watch *dns_watch_new(dns_watch_row_fn row, void *ctx)
{
    struct dns_watch *watch = calloc(1, sizeof *watch);
    if (!watch)
        return NULL;
    watch->row = row;
    watch->ctx = ctx;
    struct dnstrack_config config = { .on_lookup = on_lookup, .on_mx_failed = on_mx_failed,
                                      .ctx = watch };
    watch->track = dnstrack_new(&config);
    watch->recent = recent_rcpt_new(0);
    watch->senders = recent_rcpt_new(0);
    watch->addresses = (struct named_ring){ .slots = calloc(NAMED_MAX, sizeof(struct named)),
                                            .cap = NAMED_MAX };
    watch->exchangers = (struct named_ring){ .slots = calloc(MX_NAMED_MAX,
                                                             sizeof(struct named)),
                                             .cap = MX_NAMED_MAX };
    if (!watch->track || !watch->recent || !watch->senders || !watch->addresses.slots ||
        !watch->exchangers.slots) {
        dns_watch_free(watch);
        return NULL;
    }
    return watch;
}

void dns_watch_free(struct dns_watch *watch)
{
    if (!watch)
        return;
    for (size_t i = 0; i < watch->pending_count; i++)
        session_free(watch->pending[i].row);
    dnstrack_free(watch->track);
    recent_rcpt_free(watch->recent);
    recent_rcpt_free(watch->senders);
    free(watch->addresses.slots);
    free(watch->exchangers.slots);
    free(watch);
}

static void handle_message(struct dns_watch *watch, const struct flow *flow, bool from_client,
                           const uint8_t *msg, size_t len, int64_t ts_us)
{
    struct dns_message parsed;
    if (dns_parse(msg, len, &parsed) < 0 && !parsed.has_question)
        return;
    watch->now_us = ts_us;
    if (from_client && !parsed.qr)
        dnstrack_query(watch->track, &parsed, flow, ts_us);
    else if (!from_client && parsed.qr)
        dnstrack_response(watch->track, &parsed, flow, ts_us);
}

void dns_watch_datagram(struct dns_watch *watch, const struct flow *flow, bool from_client,
                        const uint8_t *payload, size_t len, int64_t ts_us)
{
    handle_message(watch, flow, from_client, payload, len, ts_us);
}

struct dns_watch_stream *dns_watch_stream_new(const struct flow *flow)
{
    struct dns_watch_stream *stream = malloc(sizeof *stream);
    if (!stream)
        return NULL;
    stream->flow = *flow;
    dns_tcp_init(&stream->reasm[0]);
    dns_tcp_init(&stream->reasm[1]);
    return stream;
}

struct stream_call {
    struct dns_watch *watch;
    struct dns_watch_stream *stream;
    bool from_client;
    int64_t ts_us;
};

static void on_tcp_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct stream_call *call = ctx;
    handle_message(call->watch, &call->stream->flow, call->from_client, msg, len, call->ts_us);
}

void dns_watch_stream_data(struct dns_watch *watch, struct dns_watch_stream *stream,
                           bool from_client, const uint8_t *bytes, size_t len, int64_t ts_us)
{
    struct stream_call call = { watch, stream, from_client, ts_us };
    dns_tcp_feed(&stream->reasm[from_client ? 0 : 1], bytes, len, on_tcp_message, &call);
}

void dns_watch_stream_free(struct dns_watch_stream *stream)
{
    free(stream);
}

/* "alice@Example.COM." and "example.com" name the same domain. */
static bool same_domain(const char *address, const char *domain)
{
    const char *at = strrchr(address, '@');
    const char *d = at ? at + 1 : address;
    size_t dl = strlen(d), nl = strlen(domain);
    if (dl > 0 && d[dl - 1] == '.')
        dl--;
    if (nl > 0 && domain[nl - 1] == '.')
        nl--;
    return dl == nl && strncasecmp(d, domain, dl) == 0;
}

/* Recipient r of session, accepted, may explain a failed MX lookup. */
static void announce_recipient(struct dns_watch *watch, const struct mt_session *session,
                               const struct mt_recipient *r, int64_t now_us)
{
    const struct mt_message *m = r->message >= 0 && (size_t)r->message < session->message_count
                                     ? &session->messages[r->message] : NULL;
    const char *sender = m ? mt_str(m->mail_from) : "";
    const char *message_id = m ? mt_str(m->message_id) : "";
    const char *addr = mt_str(r->addr);
    recent_rcpt_add(watch->recent, sender, addr, message_id, now_us);
    for (size_t p = 0; p < watch->pending_count; p++) {
        if (!same_domain(addr, watch->pending[p].domain))
            continue;
        link_row(watch->pending[p].row, sender, addr, message_id);
        release_pending(watch, p, true);
        p--;
    }
}

void dns_watch_inbound(struct dns_watch *watch, const struct mt_session *session,
                       size_t *announced, bool closing, int64_t now_us)
{
    if (session->proto != MT_PROTO_SMTP || session->direction != MT_INBOUND) {
        if (session->proto == MT_PROTO_SMTP && session->message_count > *announced)
            note_mta(watch, session->client_ip);   /* a relay sending: it delivers */
        /* nothing of it to announce: counted as done, so the caller stops asking */
        *announced = session->message_count;
        return;
    }
    size_t first = *announced, end = first;
    while (end < session->message_count &&
           (closing || session->messages[end].status != MT_STATUS_UNKNOWN))
        end++;
    if (end == first && !closing)
        return;   /* called for every segment of a message: nothing new until it is decided */
    *announced = end;
    note_mta(watch, session->server_ip);   /* it receives mail: it delivers too */
    for (size_t i = first; i < end; i++)   /* the senders it was checking */
        if (mt_str(session->messages[i].mail_from)[0])
            recent_rcpt_add(watch->senders, "", mt_str(session->messages[i].mail_from), "",
                            now_us);
    for (size_t i = 0; i < session->recipient_count; i++) {
        const struct mt_recipient *r = &session->recipients[i];
        bool in_range = r->message >= 0 ? (size_t)r->message >= first && (size_t)r->message < end
                                        : closing;   /* of no message kept (over the cap) */
        if (r->accepted && in_range)
            announce_recipient(watch, session, r, now_us);
    }
}

void dns_watch_tick(struct dns_watch *watch, int64_t now_us)
{
    if (now_us > watch->now_us)
        watch->now_us = now_us;
    dnstrack_expire(watch->track, now_us, DNS_TIMEOUT_US);
    for (size_t p = 0; p < watch->pending_count; p++)
        if (watch->pending[p].deadline_us < now_us)
            release_pending(watch, p--, false);
}

void dns_watch_finish(struct dns_watch *watch, int64_t now_us)
{
    if (now_us > watch->now_us)
        watch->now_us = now_us;
    dnstrack_flush(watch->track);
    while (watch->pending_count > 0)
        release_pending(watch, 0, false);
}
