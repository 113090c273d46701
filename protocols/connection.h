/* connection.h — one TCP connection's decoding, wired once for the pipeline and the fuzz
 * harness: the session record of a flow, its protocol decoder and the TLS follower beside
 * it (or, for DNS over TCP, a dns_watch stream), fed each side's bytes and settled when
 * reassembly says how the connection ended. No store and no capture health: what happens
 * to a finished session is the caller's business. */
#ifndef MAILTAP_CONNECTION_H
#define MAILTAP_CONNECTION_H

#include "protocols/decoder.h"
#include "protocols/dnswatch.h"
#include "protocols/session.h"
#include "protocols/tlsfollow.h"
#include "reassembly/flow.h"
#include "reassembly/reassembly.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Public so that a caller can embed it beside its own per-stream fields. Everything it
 * points to is owned by it from connection_open() to connection_close(). */
struct mt_connection {
    struct mt_session *session;
    const struct mt_decoder *decoder;   /* NULL: none for this protocol (or DNS) */
    void *state;                        /* the decoder's; NULL: recorded without decoding */
    struct tls_follow *tls;             /* NULL: no TLS parser (findings only) */
    struct dns_watch_stream *dns;       /* DNS over TCP instead of a mail decoder */
    /* A port given without a protocol: SMTP, POP3 and IMAP servers all speak first, so the
     * server's first byte tells ('+' or '-': POP3, '*': IMAP, else SMTP). Until then the
     * client's bytes wait here (at most CONNECTION_GUESS_HOLD; past that it is SMTP). */
    bool guessing;
    char *held;
    size_t held_len;
    int64_t held_us;
    uint8_t conflicts_noted;   /* connection_overlap_conflict(): 1 client, 2 server */
    bool snap_cut;             /* a packet was cut by the snap length: that is its gap */
    bool reset_last;           /* a RST came, and no byte after it (connection_reset_by()) */
    int64_t reset_us;
    uint8_t fins;              /* connection_fin_by(): 1 the client's, 2 the server's */
    int64_t server_fin_us;
};

#define CONNECTION_GUESS_HOLD 4096

/* A session's endpoints from a flow: addresses as text, ports, direction (inbound: the
 * server is on a local network), start and end at start_us. Attempt rows use it too. */
void connection_fill_endpoints(struct mt_session *session, const struct flow *flow,
                               bool inbound, int64_t start_us);

/* A connection of proto to flow, established at ts_us: the session with its endpoints,
 * then the protocol's decoder and a TLS follower, or for MT_PROTO_DNS a DNS-over-TCP
 * stream. With guess, proto (a mail protocol) is only what the connection is taken for
 * until the server's first byte says which one it speaks (see struct mt_connection): a
 * bare --port must not decode POP3 as SMTP, which knows no PASS to mask. A decoder state
 * or follower that cannot be allocated is done without (the connection is still
 * recorded). False when there is no memory for the session or the DNS stream; nothing is
 * left allocated then. */
bool connection_open(struct mt_connection *conn, enum mt_proto proto, bool guess,
                     const struct flow *flow, bool inbound, int64_t ts_us);

/* Bytes sent by one side, captured at ts_us (valid only during the call). A mail
 * connection counts them, moves end_us and feeds decoder and follower; a DNS stream
 * hands them to dns (NULL: dropped). */
void connection_data(struct mt_connection *conn, struct dns_watch *dns, enum stream_side from,
                     const char *bytes, size_t len, int64_t ts_us);

/* How reassembly's ending is recorded; MT_END_EOF for a value out of range. */
enum mt_end connection_end(enum stream_end how);

/* A segment from side `from` overlapped bytes seen before with different ones (the first
 * copy was decoded): flags the session MT_FLAG_OVERLAP_CONFLICT, with a transcript note
 * the first time for each side. */
void connection_overlap_conflict(struct mt_connection *conn, enum stream_side from,
                                 int64_t ts_us);

/* A RST came from side `from` (session->reset_by): if the connection ends reset, the
 * session says who reset it, with a transcript note. The first RST counts. A RST libnids
 * did not take (one at the right edge of a full receive window: a server killed while a
 * slow client reads) that nothing followed until the input ended is how the connection
 * ended all the same. */
void connection_reset_by(struct mt_connection *conn, enum stream_side from, int64_t ts_us);

/* A FIN came from side `from`: the first says who closed (session->closed_by). A FIN
 * from the server that the input ended after, the client's not seen (the capture stopped,
 * or a client that never closes), is a close by the server all the same. */
void connection_fin_by(struct mt_connection *conn, enum stream_side from, int64_t ts_us);

/* A packet of the connection was cut by the capture's snap length: a sequence gap it ends
 * with is said to be that (a capture setting), not packets the mirror port lost. */
void connection_snap_cut(struct mt_connection *conn);

/* Packets of the session were not captured (why: in what way): flagged capture_gap, and an
 * inconclusive status becomes incomplete, at the later of end_us and ts_us (its close). */
void connection_capture_lost(struct mt_session *session, int64_t ts_us, const char *why);

/* The connection ended (how, at ts_us; data_lost: reassembly was left with a sequence
 * gap). Sets end and end_us, closes and frees the decoder, settles and frees the follower,
 * notes a gap, and returns the session: the caller owns it. A DNS stream returns NULL with
 * everything freed (its lookups were reported as they completed). conn is left empty. */
struct mt_session *connection_close(struct mt_connection *conn, enum stream_end how,
                                    bool data_lost, int64_t ts_us);

#endif
