/* linklayer.c — link-layer decoding down to the IP header. */
#include "linklayer.h"

#include <pcap/pcap.h>

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#define LINKTYPE_RAW 101   /* what pcap files say for raw IP; libpcap maps it to DLT_RAW */

enum {
    ETHERTYPE_IPV4 = 0x0800,
    ETHERTYPE_IPV6 = 0x86dd,
    ETHERTYPE_VLAN = 0x8100,
    ETHERTYPE_QINQ = 0x88a8,
    ETHERTYPE_QINQ_OLD = 0x9100,
    VLAN_TAGS_MAX = 4,
};

static uint16_t read_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

bool link_type_supported(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case LINKTYPE_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
        return true;
    default:
        return false;
    }
}

/* Classifies by the version nibble, for link types that carry bare IP. */
static int ip_by_version(const uint8_t *p, size_t len, struct ip_frame *out)
{
    if (len < 1)
        return -1;
    int version = p[0] >> 4;
    if (version != 4 && version != 6)
        return 0;
    out->version = version;
    out->ip = p;
    out->len = len;
    return 1;
}

static int ip_by_ethertype(uint16_t type, const uint8_t *p, size_t len, struct ip_frame *out)
{
    if (type == ETHERTYPE_IPV4 || type == ETHERTYPE_IPV6) {
        if (len < 1)
            return -1;
        out->version = type == ETHERTYPE_IPV4 ? 4 : 6;
        out->ip = p;
        out->len = len;
        return 1;
    }
    return 0;
}

static int decode_ethernet(const uint8_t *frame, size_t caplen, struct ip_frame *out)
{
    size_t offset = 12;
    if (caplen < 14)
        return -1;
    uint16_t type = read_be16(frame + offset);
    /* 802.1Q and QinQ: each tag is 4 bytes (TPID already read, then TCI, then type). */
    for (int tags = 0; type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ ||
                       type == ETHERTYPE_QINQ_OLD; tags++) {
        if (tags == VLAN_TAGS_MAX)
            return 0;
        offset += 4;
        if (caplen < offset + 2)
            return -1;
        type = read_be16(frame + offset);
    }
    offset += 2;
    return ip_by_ethertype(type, frame + offset, caplen - offset, out);
}

static int decode_null(int dlt, const uint8_t *frame, size_t caplen, struct ip_frame *out)
{
    if (caplen < 4)
        return -1;
    /* DLT_NULL stores the address family in the writer's byte order; DLT_LOOP in
     * network order. Families: 2 = IPv4; 10, 24, 28, 30 = IPv6 on various systems.
     * Checking the version nibble is simpler and independent of the writer. */
    (void)dlt;
    return ip_by_version(frame + 4, caplen - 4, out);
}

int link_find_ip(int dlt, const uint8_t *frame, size_t caplen, struct ip_frame *out)
{
    switch (dlt) {
    case DLT_EN10MB:
        return decode_ethernet(frame, caplen, out);
    case DLT_LINUX_SLL:
        if (caplen < 16)
            return -1;
        return ip_by_ethertype(read_be16(frame + 14), frame + 16, caplen - 16, out);
    case DLT_LINUX_SLL2:
        if (caplen < 20)
            return -1;
        return ip_by_ethertype(read_be16(frame), frame + 20, caplen - 20, out);
    case DLT_RAW:
    case LINKTYPE_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return ip_by_version(frame, caplen, out);
    case DLT_NULL:
    case DLT_LOOP:
        return decode_null(dlt, frame, caplen, out);
    default:
        return 0;
    }
}
