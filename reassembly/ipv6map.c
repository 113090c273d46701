/* ipv6map.c — bounded open-addressing table IPv6 address <-> synthetic IPv4 index. */
#include "ipv6map.h"

#include <stdlib.h>
#include <string.h>

/* Slots are twice the capacity so probing stays short; slot value 0 means empty,
 * otherwise it is 1 + index into addresses[]. */
#define SLOT_COUNT (IPV6MAP_CAPACITY * 2)

struct ipv6map {
    uint32_t *slots;
    uint8_t (*addresses)[16];
    uint32_t count;
};

struct ipv6map *ipv6map_new(void)
{
    struct ipv6map *map = calloc(1, sizeof *map);
    if (!map)
        return NULL;
    map->slots = calloc(SLOT_COUNT, sizeof *map->slots);
    map->addresses = malloc((size_t)IPV6MAP_CAPACITY * 16);
    if (!map->slots || !map->addresses) {
        ipv6map_free(map);
        return NULL;
    }
    return map;
}

void ipv6map_free(struct ipv6map *map)
{
    if (!map)
        return;
    free(map->slots);
    free(map->addresses);
    free(map);
}

static uint32_t hash_address(const uint8_t addr[16])
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    return h;
}

bool ipv6map_to_v4(struct ipv6map *map, const uint8_t addr[16], uint32_t *v4)
{
    uint32_t slot = hash_address(addr) & (SLOT_COUNT - 1);
    for (;;) {
        uint32_t entry = map->slots[slot];
        if (entry == 0)
            break;
        if (memcmp(map->addresses[entry - 1], addr, 16) == 0) {
            *v4 = IPV6MAP_SYNTHETIC_NET | (entry - 1);
            return true;
        }
        slot = (slot + 1) & (SLOT_COUNT - 1);
    }
    if (map->count >= IPV6MAP_CAPACITY)
        return false;
    uint32_t index = map->count++;
    memcpy(map->addresses[index], addr, 16);
    map->slots[slot] = index + 1;
    *v4 = IPV6MAP_SYNTHETIC_NET | index;
    return true;
}

bool ipv6map_from_v4(const struct ipv6map *map, uint32_t v4, uint8_t addr[16])
{
    if (!ipv6map_is_synthetic(v4))
        return false;
    uint32_t index = v4 & ~0xf0000000u;
    if (index >= map->count)
        return false;
    memcpy(addr, map->addresses[index], 16);
    return true;
}
