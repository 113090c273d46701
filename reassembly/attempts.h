/* attempts.h — connection attempts that libnids never reports: a SYN to a mail port
 * that was answered by RST (refused) or never answered (no response). Also notices a
 * "client talks but the server is never seen" attempt (one-sided capture), so that a
 * mirror port missing one direction is not reported as a dead server. An answered attempt
 * stays until libnids reports the connection established: one that never is (the client
 * never completed the handshake, or libnids dropped the half-open stream from a full
 * table, which it does without telling anyone) is reported too, never lost silently.
 * Bounded: when the table is full the oldest attempt is settled early. */
#ifndef MAILTAP_ATTEMPTS_H
#define MAILTAP_ATTEMPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct attempt_key {
    uint32_t client, server;        /* libnids-side IPv4 (maybe synthetic), network order */
    uint16_t client_port, server_port;
};

enum attempt_outcome {
    ATTEMPT_REFUSED,      /* RST from the server */
    ATTEMPT_UNANSWERED,   /* nothing from the server before the timeout */
    ATTEMPT_ONE_SIDED,    /* client kept sending as if answered; server side not captured */
    ATTEMPT_NOT_ESTABLISHED, /* SYN-ACK seen, the connection never established */
    ATTEMPT_SERVER_ONLY,  /* a SYN-ACK answering no SYN seen, and nothing from the client:
                             the client side not captured */
    ATTEMPT_CUT,          /* the input ended within the SYN timeout, before an answer (or
                             before the handshake finished): nobody failed */
};

/* A SYN's IPv4 and TCP headers with options fit; a SYN carrying data (TFO) is not held. */
#define ATTEMPT_SYN_MAX 128

struct attempt {
    struct attempt_key key;
    int64_t syn_us, last_us;
    uint32_t syn_count, rst_count;
    bool client_acked;
    uint64_t client_bytes;           /* TCP payload the client sent (one-sided capture) */
    /* What the client sent, kept while nothing came back (a mirror port copying one
     * direction): records of attempts_data_next(), in sequence order from the first data
     * segment; data_gap: not all of it (a hole, a cap). NULL until client data comes. */
    uint8_t *data;
    uint32_t data_len, data_cap, next_seq;
    bool data_gap;
    bool answered;                   /* SYN-ACK seen: waiting for libnids' "established" */
    bool server_only;                /* made by a SYN-ACK, no SYN or client packet seen */
    uint16_t syn_len;                /* the held SYN packet, 0 if none */
    uint8_t syn[ATTEMPT_SYN_MAX];
};

typedef void (*attempt_settled_fn)(void *ctx, const struct attempt *attempt,
                                   enum attempt_outcome outcome, int64_t now_us);

struct attempts;

struct attempts *attempts_new(uint32_t capacity, attempt_settled_fn settled, void *ctx);
void attempts_free(struct attempts *attempts);

/* A SYN (without ACK) from the client. The packet (syn, len: the IPv4 packet as libnids
 * would get it) is held when it fits: libnids is given it only when the server answers,
 * so half-open connections (scans, floods, dead servers) never take a slot in its stream
 * table. Returns true when held (the caller must not hand it over now). */
bool attempts_on_syn(struct attempts *attempts, const struct attempt_key *key, int64_t now_us,
                     const uint8_t *syn, size_t len);
/* Any packet from the server side: SYN-ACK marks the attempt answered (it waits for
 * attempts_on_established()); RST marks it refused. A refused attempt is settled only when
 * its SYN times out, so that the client's retries of the same connection (Windows sends
 * the SYN again after a RST) make one record. Another server packet without a SYN-ACK
 * seen (the capture began mid-handshake) forgets it; so does a RST after the SYN-ACK (a
 * handshake aborted, as libnids silently drops it too). */
/* For a SYN-ACK answering a held SYN, copies that SYN into syn_out (ATTEMPT_SYN_MAX bytes)
 * and returns its length: hand it to libnids before the SYN-ACK. Else returns 0. */
size_t attempts_on_server_packet(struct attempts *attempts, const struct attempt_key *key,
                                 bool rst, bool syn_ack, int64_t now_us, uint8_t *syn_out);
/* A SYN-ACK that answered no SYN seen, for a connection libnids does not follow either:
 * remembered (its retransmissions are the same one) and settled as ATTEMPT_SERVER_ONLY
 * unless a client packet of it turns up (the capture began mid-handshake: forgotten). */
void attempts_on_orphan_syn_ack(struct attempts *attempts, const struct attempt_key *key,
                                int64_t now_us);
/* A pending attempt of that connection is remembered. */
bool attempts_known(struct attempts *attempts, const struct attempt_key *key);
/* A non-SYN packet from the client while the attempt is pending (rst: it is a RST), with
 * payload bytes of data. */
void attempts_on_client_packet(struct attempts *attempts, const struct attempt_key *key,
                               bool rst, const uint8_t *payload, size_t len, uint32_t seq,
                               int64_t now_us);
/* Client bytes kept per attempt, and in all attempts together: a one-sided capture's
 * dialogue is short (commands, a message's start); a flood of them must not grow memory. */
#define ATTEMPT_DATA_MAX (32 * 1024)
#define ATTEMPTS_DATA_BUDGET (8 * 1024 * 1024)
/* The next piece of an attempt's kept client data from *pos (start at 0): its capture
 * time and bytes. False at the end. */
bool attempts_data_next(const struct attempt *attempt, size_t *pos, int64_t *ts_us,
                        const uint8_t **bytes, uint32_t *len);
/* libnids reported the connection established: the attempt is over. */
void attempts_on_established(struct attempts *attempts, const struct attempt_key *key);
/* Settles attempts whose SYN is older than now - timeout, and refused ones (answered by a
 * RST) with nothing for refused_quiet_us: an admin checking "is port 25 closed?" should
 * not wait for the SYN timeout, and clients retry a refused SYN within a second or two. */
void attempts_expire(struct attempts *attempts, int64_t now_us, int64_t timeout_us,
                     int64_t refused_quiet_us);
/* End of input: settles everything still pending; a SYN (or a handshake) younger than
 * timeout_us, neither refused nor one-sided, is ATTEMPT_CUT rather than unanswered. */
void attempts_flush(struct attempts *attempts, int64_t now_us, int64_t timeout_us);
uint32_t attempts_pending(const struct attempts *attempts);

#endif
