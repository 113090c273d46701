/* linklayer.h — finds the IP packet inside a captured frame, for every link type
 * mailtap supports (Ethernet with 802.1Q/QinQ, Linux cooked SLL/SLL2, raw IP, BSD
 * loopback). Reads only within the captured bytes. */
#ifndef MAILTAP_LINKLAYER_H
#define MAILTAP_LINKLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ip_frame {
    int version;          /* 4 or 6 */
    const uint8_t *ip;    /* first byte of the IP header */
    size_t len;           /* captured bytes from ip onwards */
};

/* True when mailtap can decode this pcap link type (DLT_*). */
bool link_type_supported(int dlt);

/* Returns 1 and fills out for an IPv4/IPv6 packet, 0 for a frame that carries
 * something else (ARP, LLDP, ...), -1 for a frame too short for its own headers. */
int link_find_ip(int dlt, const uint8_t *frame, size_t caplen, struct ip_frame *out);

#endif
