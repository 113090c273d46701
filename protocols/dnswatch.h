/* dnswatch.h — DNS beside the mail sessions: every kept lookup (MX, A, AAAA, TXT, PTR,
 * TLSA) becomes a `dns` row; a failed MX lookup becomes an Outbound SMTP row with status
 * `dns_failed` ("Name service error for name=example.com type=MX: Host not found"),
 * linked to the inbound message that caused it when one arrived shortly before, as a mail
 * server's own log would show it. Rows are handed to a callback (the store). */
#ifndef MAILTAP_DNSWATCH_H
#define MAILTAP_DNSWATCH_H

#include "protocols/session.h"
#include "reassembly/flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receives each finished row and owns it from then on (session_free() it: the pipeline
 * hands it to the writer thread). */
typedef void (*dns_watch_row_fn)(void *ctx, struct mt_session *row);

struct dns_watch;
struct dns_watch_stream;   /* DNS over TCP: one per connection */

struct dns_watch *dns_watch_new(dns_watch_row_fn row, void *ctx);
void dns_watch_free(struct dns_watch *watch);

/* A UDP payload on port 53; from_client: the query direction. */
void dns_watch_datagram(struct dns_watch *watch, const struct flow *flow, bool from_client,
                        const uint8_t *payload, size_t len, int64_t ts_us);

struct dns_watch_stream *dns_watch_stream_new(const struct flow *flow);
void dns_watch_stream_data(struct dns_watch *watch, struct dns_watch_stream *stream,
                           bool from_client, const uint8_t *bytes, size_t len, int64_t ts_us);
void dns_watch_stream_free(struct dns_watch_stream *stream);

/* An inbound SMTP session's messages, from *announced on: the accepted recipients of each
 * message whose outcome is decided (all of them when closing, and recipients of no
 * message) may explain a failed MX lookup, pending or to come within a minute of now_us.
 * Called as the session goes (a relay looks the domain up as soon as it has queued the
 * message, and the client may keep the connection open long after) and when it ends;
 * *announced (0 at first) keeps what was announced. */
void dns_watch_inbound(struct dns_watch *watch, const struct mt_session *session,
                       size_t *announced, bool closing, int64_t now_us);

/* The host name the client at client_ip was given server_ip for (an A or AAAA answer to
 * a lookup it made in the hour before ts_us, the latest), into name; into mx_of the domain
 * whose MX answer to that client named the host ("" if none seen). False when none: a
 * mail session to an address says which name the client meant (the MX host, for a
 * relay), and a certificate naming that host is not a mismatch (tlsfollow.c). */
bool dns_watch_name_of(const struct dns_watch *watch, const char *client_ip,
                       const char *server_ip, int64_t ts_us, char *name, size_t name_cap,
                       char *mx_of, size_t mx_cap);

/* Times out unanswered queries and releases failed-MX rows whose linking window passed. */
void dns_watch_tick(struct dns_watch *watch, int64_t now_us);
/* End of input: everything pending is settled and handed over. */
void dns_watch_finish(struct dns_watch *watch, int64_t now_us);

#endif
