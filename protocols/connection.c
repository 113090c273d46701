/* connection.c — one TCP connection's decoding: session, decoder, TLS follower, DNS stream. */
#include "protocols/connection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a server may take to greet before its silence at the end of the input means
 * something: postscreen's greet pause and tarpits stay well under it. */
#define GREETING_WAIT_US (30LL * 1000000)

void connection_fill_endpoints(struct mt_session *session, const struct flow *flow,
                               bool inbound, int64_t start_us)
{
    ip_address_format(&flow->client, session->client_ip, sizeof session->client_ip);
    ip_address_format(&flow->server, session->server_ip, sizeof session->server_ip);
    session->client_port = flow->client_port;
    session->server_port = flow->server_port;
    session->direction = inbound ? MT_INBOUND : MT_OUTBOUND;
    session->start_us = session->end_us = start_us;
}

/* The decoder of proto, from here on. */
static void start_decoder(struct mt_connection *conn, enum mt_proto proto)
{
    conn->session->proto = proto;
    conn->decoder = decoder_for(proto);
    conn->state = conn->decoder ? conn->decoder->open(conn->session) : NULL;
}

/* The guess is over: the decoder of proto gets the client's held bytes first, as they
 * came before anything from the server. */
static void guessed(struct mt_connection *conn, enum mt_proto proto)
{
    conn->guessing = false;
    start_decoder(conn, proto);
    if (conn->state && conn->held_len > 0)
        conn->decoder->data(conn->state, conn->session, MT_CLIENT, conn->held, conn->held_len,
                            conn->held_us);
    if (conn->held)   /* may hold a password line */
        explicit_bzero(conn->held, conn->held_len);
    free(conn->held);
    conn->held = NULL;
    conn->held_len = 0;
}

/* What a server that speaks first said first. */
static enum mt_proto proto_of_greeting(char first)
{
    return first == '+' || first == '-' ? MT_PROTO_POP3 : first == '*' ? MT_PROTO_IMAP
                                                                       : MT_PROTO_SMTP;
}

/* Holds client bytes sent before the server's first; false when they do not fit. */
static bool hold(struct mt_connection *conn, const char *bytes, size_t len, int64_t ts_us)
{
    if (len > CONNECTION_GUESS_HOLD - conn->held_len)
        return false;
    if (!conn->held && !(conn->held = malloc(CONNECTION_GUESS_HOLD)))
        return false;
    memcpy(conn->held + conn->held_len, bytes, len);
    if (conn->held_len == 0)
        conn->held_us = ts_us;
    conn->held_len += len;
    return true;
}

bool connection_open(struct mt_connection *conn, enum mt_proto proto, bool guess,
                     const struct flow *flow, bool inbound, int64_t ts_us)
{
    *conn = (struct mt_connection){ .session = session_new(proto) };
    if (!conn->session)
        return false;
    connection_fill_endpoints(conn->session, flow, inbound, ts_us);
    if (proto == MT_PROTO_DNS) {
        conn->dns = dns_watch_stream_new(flow);
        if (!conn->dns) {
            session_free(conn->session);
            conn->session = NULL;
            return false;
        }
        return true;
    }
    if (guess)   /* DNS has returned above */
        conn->guessing = true;
    else
        start_decoder(conn, proto);
    conn->tls = tls_follow_new();
    return true;
}

void connection_data(struct mt_connection *conn, struct dns_watch *dns, enum stream_side from,
                     const char *bytes, size_t len, int64_t ts_us)
{
    if (conn->dns) {
        if (dns)
            dns_watch_stream_data(dns, conn->dns, from == STREAM_FROM_CLIENT,
                                  (const uint8_t *)bytes, len, ts_us);
        return;
    }
    struct mt_session *session = conn->session;
    /* With thousands of connections open each of these is cold, and in an allocation of
     * its own: asked for together, their cache misses overlap instead of following one
     * another through the decoder (see the order of struct mt_session). */
    __builtin_prefetch(session);
    __builtin_prefetch((const char *)session + 64);
    __builtin_prefetch(conn->state);
    __builtin_prefetch(conn->tls);
    conn->reset_last = false;   /* the connection went on after it */
    if (from == STREAM_FROM_CLIENT)
        session->bytes_c2s += len;
    else
        session->bytes_s2c += len;
    session->end_us = ts_us;
    enum mt_side side = from == STREAM_FROM_CLIENT ? MT_CLIENT : MT_SERVER;
    if (conn->guessing) {
        if (side == MT_SERVER)
            guessed(conn, proto_of_greeting(len > 0 ? bytes[0] : 0));
        else if (!hold(conn, bytes, len, ts_us))
            guessed(conn, session->proto);   /* a client that talks on: not one of those */
    }
    if (conn->state)   /* none while guessing: guessed() starts it */
        conn->decoder->data(conn->state, session, side, bytes, len, ts_us);
    if (conn->tls)
        tls_follow_data(conn->tls, session, side, bytes, len, ts_us);
}

enum mt_end connection_end(enum stream_end how)
{
    switch (how) {
    case STREAM_CLOSED: return MT_END_CLOSE;
    case STREAM_RESET: return MT_END_RESET;
    case STREAM_IDLE_TIMEOUT: return MT_END_TIMEOUT;
    case STREAM_EVICTED: return MT_END_EVICTED;
    case STREAM_REFUSED: return MT_END_REFUSED;
    case STREAM_UNANSWERED: return MT_END_UNANSWERED;
    case STREAM_NOT_ESTABLISHED: return MT_END_TIMEOUT;   /* the handshake never finished */
    case STREAM_ONE_SIDED:
    case STREAM_SERVER_ONLY:
    case STREAM_END_OF_INPUT: return MT_END_EOF;
    }
    return MT_END_EOF;
}

void connection_overlap_conflict(struct mt_connection *conn, enum stream_side from,
                                 int64_t ts_us)
{
    struct mt_session *session = conn->session;
    bool client = from == STREAM_FROM_CLIENT;
    if (!session || conn->dns)
        return;
    unsigned seen = client ? 1u : 2u;
    session->flags |= MT_FLAG_OVERLAP_CONFLICT;
    if (conn->conflicts_noted & seen)
        return;
    conn->conflicts_noted |= seen;
    session_transcript_addf(session, ts_us, 'I',
                            "[the %s resent bytes with different content (overlapping TCP "
                            "segments): what was first received is shown]",
                            client ? "client" : "server");
}

void connection_reset_by(struct mt_connection *conn, enum stream_side from, int64_t ts_us)
{
    if (!conn->session)
        return;
    if (conn->session->reset_by < 0)
        conn->session->reset_by = from == STREAM_FROM_CLIENT ? MT_CLIENT : MT_SERVER;
    if (!conn->reset_last)
        conn->reset_us = ts_us;
    conn->reset_last = true;
}

void connection_fin_by(struct mt_connection *conn, enum stream_side from, int64_t ts_us)
{
    if (!conn->session)
        return;
    bool client = from == STREAM_FROM_CLIENT;
    if (conn->fins == 0)
        conn->session->closed_by = client ? MT_CLIENT : MT_SERVER;
    if (!client && !(conn->fins & 2))
        conn->server_fin_us = ts_us;
    conn->fins |= client ? 1 : 2;
}

void connection_snap_cut(struct mt_connection *conn)
{
    conn->snap_cut = true;
}

void connection_capture_lost(struct mt_session *session, int64_t ts_us, const char *why)
{
    /* Capture loss is the sensor's failure, not the server's: said so, never blamed. */
    session_capture_lost(session, session->end_us > ts_us ? session->end_us : ts_us, why);
}

struct mt_session *connection_close(struct mt_connection *conn, enum stream_end how,
                                    bool data_lost, int64_t ts_us)
{
    struct mt_session *session = conn->session;
    if (conn->dns) {
        dns_watch_stream_free(conn->dns);
        session_free(session);
        *conn = (struct mt_connection){ 0 };
        return NULL;
    }
    if (conn->guessing)   /* the server never spoke: what it was taken for */
        guessed(conn, session->proto);
    if (conn->state && conn->decoder->flush)   /* its lines before the notes on the end */
        conn->decoder->flush(conn->state, session);
    if (how == STREAM_END_OF_INPUT && conn->reset_last && session->reset_by >= 0) {
        how = STREAM_RESET;   /* a RST libnids left aside ended it: nothing came after */
        ts_us = conn->reset_us;
    } else if (how == STREAM_END_OF_INPUT && conn->fins == 2) {
        how = STREAM_CLOSED;   /* the server closed; the client's side was not captured */
        ts_us = conn->server_fin_us;
        session_transcript_addf(session, ts_us, 'I', "[connection closed by the server; the "
                                "client's side of the close was not captured]");
    }
    if (how != STREAM_CLOSED)
        session->closed_by = -1;
    session->end = connection_end(how);
    if (how != STREAM_RESET)   /* a RST libnids did not take: not how it ended */
        session->reset_by = -1;
    if (session->reset_by >= 0)   /* noted before the decoder decides */
        session_transcript_addf(session, ts_us > session->end_us ? ts_us : session->end_us, 'I',
                                "[%s]", session_end_words(session));
    /* The end of input and the idle timer are not the connection's doing: its last
     * bytes stay its end (unless its decoder finds a server silent a minute or more owing
     * an answer: the connection waited until the end, session_end_at_silence()). */
    if (ts_us > session->end_us && how != STREAM_END_OF_INPUT && how != STREAM_IDLE_TIMEOUT)
        session->end_us = ts_us;
    if (how == STREAM_END_OF_INPUT || how == STREAM_IDLE_TIMEOUT)
        session->input_end_us = ts_us;   /* how long the silence at its end was watched */
    if (conn->state) {
        conn->decoder->close(conn->state, session);
        conn->decoder->free(conn->state);
    }
    /* A server silent only because the capture ended (a rotated file, a sensor stopped)
     * moments after the connection: not a server down or hung. */
    if (how == STREAM_END_OF_INPUT && session->status == MT_STATUS_NO_RESPONSE &&
        ts_us - session->start_us < GREETING_WAIT_US) {
        char line[160];
        int n = snprintf(line, sizeof line, "the capture ended %.1f s after the connection was"
                         " accepted, before the server's first words",
                         (double)(ts_us - session->start_us) / 1e6);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        session_decide(session, MT_STATUS_INCOMPLETE, line, len,
                       session_transcript_add(session, session->end_us, 'I', line, len));
    }
    tls_follow_settle(conn->tls, session);
    tls_follow_free(conn->tls);
    if (data_lost)
        connection_capture_lost(session, ts_us, conn->snap_cut
                                ? "packets cut by the snap length, only their start captured "
                                  "(capture whole packets: tcpdump -s 0)"
                                : "a sequence gap (segments missing)");
    *conn = (struct mt_connection){ 0 };
    return session;
}
