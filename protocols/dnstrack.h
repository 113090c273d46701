/* dnstrack.h — DNS lookups as a mail server's resolver made them: queries matched to
 * responses (by client/server address and port, id, question), timeouts, the verdict on
 * MX lookups Postfix-style ("Name service error for name=... type=MX: Host not found"),
 * and a small ring of recent inbound recipients to link a failed lookup to the message
 * that caused it. Pure: no I/O, no globals; every table is bounded. */
#ifndef MAILTAP_DNSTRACK_H
#define MAILTAP_DNSTRACK_H

#include "protocols/dns.h"
#include "reassembly/flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_SUMMARY_MAX 1024      /* answers summary text */
#define DNS_DETAIL_MAX 1200       /* a failure detail line */
#define RECENT_ADDR_MAX 320       /* = MT_ADDR_MAX */

enum dns_lookup_status {
    DNS_LOOKUP_ANSWERED,   /* a response came (any rcode) */
    DNS_LOOKUP_TIMEOUT,    /* no response within the timeout, evicted, or input ended */
};

/* One lookup: a query and its response (or its absence). */
struct dns_lookup {
    struct flow flow;          /* client = the resolver that asked; server = port 53 side */
    uint16_t id;
    char qname[DNS_NAME_MAX];  /* sanitized, as in the query (case kept) */
    uint16_t qtype;
    enum dns_lookup_status status;
    int rcode;                 /* 12-bit (EDNS) response code; -1 without a response */
    bool tc;                   /* response truncated: the client retries over TCP */
    unsigned ancount;          /* answer records in the response */
    bool has_mx, null_mx;      /* MX answers; RFC 7505 "0 ." */
    bool has_address;          /* A or AAAA answers */
    char answers[DNS_SUMMARY_MAX]; /* "10 mx1.example.com,20 mx2.example.com" / addresses */
    int64_t ts_us;             /* first query */
    int64_t response_us;       /* response time from the first query; -1 without one */
    unsigned retransmits;      /* identical queries seen again while waiting */
    bool evicted;              /* pushed out of a full table before its timeout */
    bool at_end;               /* flushed at end of input before its timeout ran out */
};

struct dnstrack_stats {
    uint64_t queries, responses, lookups;
    uint64_t retransmits;          /* repeated queries folded into one lookup */
    uint64_t duplicate_responses;  /* a second response to an answered lookup */
    uint64_t unmatched_responses;  /* response without a query we saw */
    uint64_t timeouts, evicted;
    uint64_t ignored;              /* not a standard query of a kept type */
    uint64_t mx_failed;            /* failed-MX verdicts delivered */
    uint64_t mx_waits_evicted;     /* MX-without-MX verdicts dropped from a full table */
};

/* Every finished lookup, answered or timed out. Pointer valid during the call only. */
typedef void (*dnstrack_lookup_fn)(void *ctx, const struct dns_lookup *lookup);
/* An MX lookup that makes mail undeliverable (see dns_mx_classify): mx is the MX lookup
 * (for a domain without MX, the detail names the failed A/AAAA fallback). */
typedef void (*dnstrack_mx_failed_fn)(void *ctx, const struct dns_lookup *mx,
                                      const char *detail);

struct dnstrack_config {
    /* Outstanding + recently answered lookups; 0: 4096. When full, an answered entry
     * among the 8 oldest is forgotten, else the oldest query becomes an evicted timeout. */
    uint32_t capacity;
    uint32_t mx_wait_capacity;     /* MX lookups waiting for their A/AAAA fallback; 0: 256 */
    dnstrack_lookup_fn on_lookup;  /* may be NULL */
    dnstrack_mx_failed_fn on_mx_failed; /* may be NULL */
    void *ctx;
};

struct dnstrack;

struct dnstrack *dnstrack_new(const struct dnstrack_config *config);
void dnstrack_free(struct dnstrack *t);

/* A parsed message from flow->client to flow->server (QR 0). Ignored unless it is a
 * standard query (opcode 0) with a question of a kept type. A query equal to one still
 * waiting or answered within the last timeout (same addresses, ports, id, name, type) is
 * a retransmission: counted, no new lookup. */
void dnstrack_query(struct dnstrack *t, const struct dns_message *m,
                    const struct flow *flow, int64_t ts_us);
/* A parsed response travelling from flow->server to flow->client (flow as for the
 * query: client is the asker). Completes the matching lookup: on_lookup is called, and
 * for MX lookups the verdict may call on_mx_failed. */
void dnstrack_response(struct dnstrack *t, const struct dns_message *m,
                       const struct flow *flow, int64_t ts_us);
/* Queries older than timeout_us without a response become timeouts; answered entries
 * older than it are forgotten; MX verdicts waiting for a fallback are settled. Call it
 * with capture time, e.g. once per second of capture. */
void dnstrack_expire(struct dnstrack *t, int64_t now_us, int64_t timeout_us);
/* End of input: every waiting query is a timeout (at_end set), every waiting MX verdict
 * is settled. */
void dnstrack_flush(struct dnstrack *t);
const struct dnstrack_stats *dnstrack_stats(const struct dnstrack *t);

/* --- the MX verdict, Postfix-style ------------------------------------------------- *
 * detail is "Name service error for name=<qname> type=<TYPE>: <text>", text as Postfix's
 * dns_strerror() words the resolver's h_errno:
 *   NXDOMAIN                      -> "Host not found"              (HOST_NOT_FOUND)
 *   SERVFAIL, REFUSED, timeout    -> "Host not found, try again"   (TRY_AGAIN)
 *   FORMERR, NOTIMP, other        -> "Non-recoverable error"       (NO_RECOVERY)
 *   NOERROR without data          -> "Host found but no data record of requested type"
 * REFUSED is TRY_AGAIN, not NO_RECOVERY: the resolver library (glibc res_send) treats a
 * REFUSED answer like SERVFAIL — try the next server — and when none answers otherwise
 * res_query fails with TRY_AGAIN, so Postfix logs "try again" and defers.
 * A null MX (RFC 7505) gives "Domain <qname> does not accept mail (nullMX)". */
enum dns_mx_verdict {
    DNS_MX_NOT_MX,       /* not an MX lookup */
    DNS_MX_OK,           /* MX records found (or a truncated response: TCP retry decides) */
    DNS_MX_FAILED,       /* detail written */
    DNS_MX_NODATA,       /* NOERROR, no MX: Postfix now looks up A/AAAA of the same name */
};

enum dns_mx_verdict dns_mx_classify(const struct dns_lookup *l, char *detail, size_t cap);

/* True when l is an MX lookup that failed on its own (NXDOMAIN, SERVFAIL, REFUSED,
 * timeout, other errors, null MX); detail gets the text above. NOERROR without MX
 * is not a failure by itself (see dns_fallback_failed). */
bool dns_lookup_failed_mx(const struct dns_lookup *l, char *detail, size_t cap);

/* For an A/AAAA lookup made after an MX lookup found no MX: true when it gave no
 * address; detail as above, e.g. "...name=example.com type=A: Host found but no data
 * record of requested type". The rule the tracker applies: a domain without MX fails
 * when every A/AAAA lookup the same client made for it (one started before the verdict
 * was settled) gave no address; the detail names the last of them. When no such lookup
 * was seen at all, nothing is reported (the address was likely cached: not known to
 * have failed). */
bool dns_fallback_failed(const struct dns_lookup *addr, char *detail, size_t cap);

/* --- recent inbound recipients --------------------------------------------------- */

struct recent_rcpt {
    char domain[RECENT_ADDR_MAX];    /* lower-cased, no final dot */
    char sender[RECENT_ADDR_MAX];
    char recipient[RECENT_ADDR_MAX];
    char message_id[RECENT_ADDR_MAX];   /* of the message it was accepted for; "" if none */
    int64_t ts_us;
};

struct recent_rcpts;

/* A ring of the last `capacity` (0: 1024) accepted inbound recipients. */
struct recent_rcpts *recent_rcpt_new(size_t capacity);
void recent_rcpt_free(struct recent_rcpts *r);
/* Records a recipient (the domain is what follows its last '@'; an address without
 * one is ignored). Call it when the recipient is accepted (RCPT 250 or end of data),
 * not at session close: the MX lookup usually happens before the session ends. */
void recent_rcpt_add(struct recent_rcpts *r, const char *sender, const char *recipient,
                     const char *message_id, int64_t ts_us);
/* The newest recipient at `domain` (case-insensitive, final dot ignored) recorded in
 * [now_us - window_us, now_us]; NULL if none. Valid until the next recent_rcpt_add. */
const struct recent_rcpt *recent_rcpt_find(const struct recent_rcpts *r, const char *domain,
                                           int64_t now_us, int64_t window_us);

#endif
