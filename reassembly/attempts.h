/* attempts.h — connection attempts that libnids never reports: a SYN to a mail port
 * that was answered by RST (refused) or never answered (no response). Also notices a
 * "client talks but the server is never seen" attempt (one-sided capture), so that a
 * mirror port missing one direction is not reported as a dead server.
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
};

struct attempt {
    struct attempt_key key;
    int64_t syn_us, last_us;
    uint32_t syn_count, rst_count;
    bool client_acked;
};

typedef void (*attempt_settled_fn)(void *ctx, const struct attempt *attempt,
                                   enum attempt_outcome outcome, int64_t now_us);

struct attempts;

struct attempts *attempts_new(uint32_t capacity, attempt_settled_fn settled, void *ctx);
void attempts_free(struct attempts *attempts);

/* A SYN (without ACK) from the client. */
void attempts_on_syn(struct attempts *attempts, const struct attempt_key *key, int64_t now_us);
/* Any packet from the server side: SYN-ACK forgets the attempt; RST marks it refused. A
 * refused attempt is settled only when its SYN times out, so that the client's retries
 * of the same connection (Windows sends the SYN again after a RST) make one record. */
void attempts_on_server_packet(struct attempts *attempts, const struct attempt_key *key,
                               bool rst, int64_t now_us);
/* A non-SYN packet from the client while the attempt is pending. */
void attempts_on_client_packet(struct attempts *attempts, const struct attempt_key *key,
                               int64_t now_us);
/* Settles attempts whose SYN is older than now - timeout. */
void attempts_expire(struct attempts *attempts, int64_t now_us, int64_t timeout_us);
/* End of input: settles everything still pending. */
void attempts_flush(struct attempts *attempts, int64_t now_us);
uint32_t attempts_pending(const struct attempts *attempts);

#endif
