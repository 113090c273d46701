/* overlap.h — TCP segments that overlap data already seen and disagree with it. libnids
 * keeps the first copy of every byte and drops what overlaps it, silently: a sender (or a
 * device on the path) that sends different bytes for the same sequence numbers — the
 * classic way to show a monitor something else than the server reads — would go unseen.
 * Each data segment's start, length and a 64-bit digest of its payload go into a table of
 * recent segments (direct-mapped, overwritten by newer ones: bounded, 6 MB). The digest
 * takes every byte of a segment up to 512 bytes (commands and replies) and, of a longer
 * one (a body), its first 64 bytes and its last word. A
 * segment that starts where a remembered one of the same direction started is compared
 * with it over the remembered length when the new one is not shorter (retransmissions
 * resend from a segment's start, alone or merged with the next ones). Not seen: an overlap
 * that starts inside a remembered segment, a shorter resend, a change in the middle of a
 * long segment, and a segment the table has forgotten (on average
 * 262,144 segments later). */
#ifndef MAILTAP_OVERLAP_H
#define MAILTAP_OVERLAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct overlap_table;

/* NULL when out of memory. */
struct overlap_table *overlap_new(void);
void overlap_free(struct overlap_table *table);

/* One direction of a TCP connection: the sender's and receiver's IPv4 address (network
 * order, maybe synthetic) and ports. */
struct overlap_flow {
    uint32_t src, dst;
    uint16_t sport, dport;
};

/* A segment carrying len > 0 bytes of data from sequence number seq. True when it
 * contradicts a remembered segment (that one stays remembered: libnids keeps the first
 * copy too); false otherwise (it is remembered, unless a consistent longer copy was). */
bool overlap_conflicts(struct overlap_table *table, const struct overlap_flow *flow,
                       uint32_t seq, const uint8_t *payload, size_t len);

/* Starts loading the table entry overlap_conflicts() will read for this segment: the table
 * is far bigger than the caches, and one miss per segment was a fifth of a read of mail
 * traffic. Call it early; doing nothing else with it is harmless. */
void overlap_prefetch(const struct overlap_table *table, const struct overlap_flow *flow,
                      uint32_t seq);

#endif
