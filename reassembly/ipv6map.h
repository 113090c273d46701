/* ipv6map.h — gives libnids (IPv4-only) a stand-in IPv4 address for each IPv6 address:
 * addresses in 240.0.0.0/4 (reserved, never routed), mapped back on output. The table is
 * bounded; when full, new IPv6 addresses are refused (and counted) rather than growing. */
#ifndef MAILTAP_IPV6MAP_H
#define MAILTAP_IPV6MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPV6MAP_SYNTHETIC_NET 0xf0000000u  /* 240.0.0.0/4 */
#define IPV6MAP_CAPACITY (1u << 18)

struct ipv6map;

struct ipv6map *ipv6map_new(void);
void ipv6map_free(struct ipv6map *map);

/* The synthetic IPv4 address (host byte order) for addr, allocating one if needed.
 * Returns false when the table is full. */
bool ipv6map_to_v4(struct ipv6map *map, const uint8_t addr[16], uint32_t *v4);

/* The IPv6 address behind a synthetic IPv4 address (host order); false if none. */
bool ipv6map_from_v4(const struct ipv6map *map, uint32_t v4, uint8_t addr[16]);

static inline bool ipv6map_is_synthetic(uint32_t v4_host_order)
{
    return (v4_host_order & 0xf0000000u) == IPV6MAP_SYNTHETIC_NET;
}

#endif
